"""Per-function environments in one process: ``os.environ`` with the running function's environment layered on
top, for the current thread or task only (a context variable).

Lambda gives each function its own environment; in one process all functions would otherwise share one, and a
function reading a variable only another function declares would work here and fail on AWS.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar

_overlay: ContextVar[Mapping[str, str] | None] = ContextVar("amci_function_environment", default=None)


class LayeredEnviron(MutableMapping[str, str]):
    """Reads see the current function's variables first, then the process's; writes go to the process's."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base

    def __getitem__(self, key: str) -> str:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def __iter__(self) -> Iterator[str]:
        overlay = _overlay.get() or {}
        yield from overlay
        yield from (key for key in self.base if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Run the block with ``variables`` layered over the process environment."""
    token = _overlay.set(variables)
    try:
        yield
    finally:
        _overlay.reset(token)


def install() -> MutableMapping[str, str]:
    """Replace ``os.environ`` with the layered view; returns the original for :func:`uninstall`."""
    original = os.environ
    if not isinstance(original, LayeredEnviron):
        os.environ = LayeredEnviron(original)  # type: ignore[assignment]  # noqa: B003 (a view, not a reset)
    return original


def uninstall(original: MutableMapping[str, str]) -> None:
    os.environ = original  # type: ignore[assignment]  # noqa: B003
