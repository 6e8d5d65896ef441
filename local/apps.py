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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.app import Chalice
from chalice.config import Config

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
_APP_MODULES = ("app", "chalicelib")


class EnvironmentConflict(RuntimeError):
    """Two functions need different values for the same environment variable, which one process cannot give."""


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

    def config(self, handler_name: str) -> Config:
        on_disk = json.loads((self.project_dir / ".chalice" / "config.json").read_text())
        return Config(chalice_stage=self.stage, function_name=handler_name, config_from_disk=on_disk)

    def function(self, handler_name: str) -> Function:
        config = self.config(handler_name)
        return Function(name=f"{self.app.app_name}-{self.stage}-{handler_name}",
                        handler=self.app.handler_map[handler_name], timeout_s=config.lambda_timeout,
                        memory_mb=config.lambda_memory_size, environment=config.environment_variables)

    def functions(self) -> list[Function]:
        return [self.function(name) for name in self.app.handler_map]


def stage_environment(project_dirs: Iterable[Path], stage: str) -> dict[str, str]:
    """The union of every function's environment in ``stage``, before any app is imported.

    Apps read their queue names from the environment at import time, as Chalice's packager does.
    """
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for project_dir in project_dirs:
        on_disk = json.loads((project_dir / ".chalice" / "config.json").read_text())
        functions = on_disk.get("stages", {}).get(stage, {}).get("lambda_functions", {})
        for function in ["api_handler", *functions]:
            env = Config(chalice_stage=stage, function_name=function, config_from_disk=on_disk).environment_variables
            for key, value in env.items():
                if key in merged and merged[key] != value:
                    raise EnvironmentConflict(f"{key} is {merged[key]!r} for {owners[key]} but {value!r} for "
                                              f"{project_dir.name}/{function}: give them different names")
                merged[key], owners[key] = value, f"{project_dir.name}/{function}"
    return merged


def load_app(project_dir: Path, stage: str) -> LoadedApp:
    """Import the Chalice app in ``project_dir`` without disturbing (or being disturbed by) the others."""
    saved = _pop_app_modules()
    sys.path.insert(0, str(project_dir))
    try:
        module = importlib.import_module("app")
    finally:
        sys.path.remove(str(project_dir))
        for name, loaded in _pop_app_modules().items():
            sys.modules[f"amci_local_apps.{project_dir.name}.{name}"] = loaded
        sys.modules.update(saved)
    return LoadedApp(project_dir.name, module.app, project_dir, stage)


def _pop_app_modules() -> dict[str, Any]:
    names = [n for n in sys.modules if n in _APP_MODULES or n.startswith("chalicelib.")]
    return {name: sys.modules.pop(name) for name in names}
