"""Loading the Chalice apps into one process, and what Lambda would know about each of their functions.

Every app has a top-level ``app`` module and a ``chalicelib`` package, so two apps cannot simply be imported side by
side. Each is imported with its own directory first on ``sys.path``; afterwards its ``app`` and ``chalicelib``
modules are moved out of ``sys.modules`` under a private prefix, so the next app imports its own. The functions keep
working because they hold their module globals. The one rule this imposes on apps: import your own modules at the
top of a module, never inside a function (third-party imports inside functions, e.g. pyarrow, are fine).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT

from local.environ import function_environment

_APP_MODULES = ("app", "chalicelib")


@dataclass(frozen=True)
class Function:
    """One Lambda function of an app, as deployed: its name, handler and configuration."""

    name: str  # the deployed name, ``{app_name}-{stage}-{handler name}``
    handler: Any
    timeout_s: int
    memory_mb: int
    environment: Mapping[str, str]


@dataclass(frozen=True)
class LoadedApp:
    service: str
    app: Chalice
    project_dir: Path
    stage: str
    recorded: Mapping[str, str]  # variables the platform stack's outputs fill, as the deploy records them

    def environment(self, handler_name: str = "api_handler") -> dict[str, str]:
        """The function's environment: its stage variables, with recorded outputs filled in."""
        declared = self.config(handler_name).environment_variables
        return {key: self.recorded.get(key, value) for key, value in declared.items()}

    def config(self, handler_name: str) -> Config:
        return stage_config(self.project_dir, self.stage, handler_name)

    def function(self, handler_name: str) -> Function:
        config = self.config(handler_name)
        return Function(name=f"{self.app.app_name}-{self.stage}-{handler_name}",
                        handler=self.app.handler_map[handler_name],
                        timeout_s=config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
                        memory_mb=config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
                        environment=self.environment(handler_name))

    def functions(self) -> list[Function]:
        return [self.function(name) for name in self.app.handler_map]


def stage_config(project_dir: Path, stage: str, handler_name: str = "api_handler") -> Config:
    """Chalice's own view of ``.chalice/config.json`` for one function (``api_handler``: the stage's defaults)."""
    on_disk = json.loads((project_dir / ".chalice" / "config.json").read_text())
    return Config(chalice_stage=stage, function_name=handler_name, config_from_disk=on_disk)


def load_app(project_dir: Path, stage: str, recorded: Mapping[str, str]) -> LoadedApp:
    """Import the Chalice app in ``project_dir`` without disturbing (or being disturbed by) the others.

    The app is imported with its stage environment in place: apps read queue names at import, as Chalice's
    packager does.
    """
    loaded = LoadedApp(project_dir.name, None, project_dir, stage, recorded)  # type: ignore[arg-type]
    saved = _pop_app_modules()
    sys.path.insert(0, str(project_dir))
    try:
        with function_environment(loaded.environment()):
            module = importlib.import_module("app")
    finally:
        sys.path.remove(str(project_dir))
        for name, module_ in _pop_app_modules().items():
            sys.modules[f"amci_local_apps.{project_dir.name}.{name}"] = module_
        sys.modules.update(saved)
    return replace(loaded, app=module.app)


def _pop_app_modules() -> dict[str, Any]:
    names = [n for n in sys.modules if n in _APP_MODULES or n.startswith("chalicelib.")]
    return {name: sys.modules.pop(name) for name in names}
