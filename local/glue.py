"""Glue job runs, executed in-process: moto records job runs but runs nothing (research/platform.md §9).

A job's script is found by the file name of its ``Command.ScriptLocation`` among the scripts the local cloud
knows (``services/*/glue/*.py``). A script defines ``main(argv: list[str])`` and ends with
``if __name__ == "__main__": main(sys.argv)``, as a Glue job script can; Glue passes ``--JOB_NAME``, ``--JOB_RUN_ID``
and the run's arguments as ``argv``, and so do we. The run goes RUNNING -> SUCCEEDED, or FAILED with the error.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from moto.glue import models as glue_models

from local.crashes import Crash, running

log = logging.getLogger(__name__)


class _LocalJobRun(glue_models.FakeJobRun):
    """A job run whose state is the state of its in-process execution, not moto's timer."""

    local_state = "STARTING"
    error_message: str | None = None

    @property
    def status(self) -> str:  # type: ignore[override]
        return self.local_state

    def as_dict(self) -> dict[str, Any]:
        result = super().as_dict()
        if self.error_message:
            result["ErrorMessage"] = self.error_message
        return result


class GlueJobRunner:
    """Patches moto so that ``start_job_run`` runs the job's script in a thread."""

    def __init__(self, scripts: Iterable[Path]) -> None:
        self.scripts = {path.name: path for path in scripts}
        self._original = glue_models.FakeJob.start_job_run

    def install(self) -> None:
        runner, original = self, self._original

        def start_job_run(job: Any, *args: Any, **kwargs: Any) -> str:
            run_id = original(job, *args, **kwargs)
            run = next(r for r in job.job_runs if r.job_run_id == run_id)
            run.__class__ = _LocalJobRun
            threading.Thread(target=runner._run, args=(job, run), name=f"glue:{job.name}", daemon=True).start()
            return run_id

        glue_models.FakeJob.start_job_run = start_job_run

    def uninstall(self) -> None:
        glue_models.FakeJob.start_job_run = self._original

    def _run(self, job: Any, run: _LocalJobRun) -> None:
        run.local_state = "RUNNING"
        try:
            main = self._entry_point(job.command.get("ScriptLocation", ""))
            argv = [job.name, "--JOB_NAME", job.name, "--JOB_RUN_ID", run.job_run_id]
            for key, value in (run.arguments or {}).items():
                argv += [key, value]
            with running(job.name):
                main(argv)
            run.local_state = "SUCCEEDED"
        except (Exception, Crash) as exc:
            log.exception("glue job failed", extra={"job": job.name, "run_id": run.job_run_id})
            run.error_message = f"{type(exc).__name__}: {exc}"
            run.local_state = "FAILED"

    def _entry_point(self, script_location: str) -> Any:
        name = script_location.rsplit("/", 1)[-1]
        if name not in self.scripts:
            raise FileNotFoundError(f"no local script for {script_location} (known: {', '.join(self.scripts)})")
        folder = str(self.scripts[name].parent)
        if folder not in sys.path:  # as Glue puts --extra-py-files on the path: the script's modules beside it
            sys.path.append(folder)
        spec = importlib.util.spec_from_file_location(f"amci_glue_{name[:-3]}", self.scripts[name])
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]  # as an import would (dataclasses look it up)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module.main
