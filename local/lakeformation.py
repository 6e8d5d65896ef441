"""moto's Lake Formation made to keep its grants as the service does.

A grant to a principal on a resource it already holds permissions on merges them into the existing grant. moto
merges in place while the grant sits in a set keyed by its content, so the set can no longer find it: the next
revoke of that grant raised KeyError (offboarding a tenant whose onboarding had run twice). Taking the grant out,
merging and putting it back keeps the set sound.
"""

from __future__ import annotations

from moto.lakeformation.models import Permission, PermissionCatalog


class MergedGrants:
    def __init__(self) -> None:
        self._original = PermissionCatalog.add_permission

    def install(self) -> None:
        PermissionCatalog.add_permission = _add_permission

    def uninstall(self) -> None:
        PermissionCatalog.add_permission = self._original


def _add_permission(catalog: PermissionCatalog, permission: Permission) -> None:
    held = next((p for p in catalog.permissions if permission.equal_principal_and_resouce(p)), None)
    if held is None:
        catalog.permissions.add(permission)
        return
    catalog.permissions.remove(held)
    held.merge(permission)
    catalog.permissions.add(held)
