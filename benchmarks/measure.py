"""What every benchmark measures the same way: a process's peak memory, the machine, a range of figures."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def status_kb(field: str) -> int:
    """A figure of /proc/self/status: VmHWM is the peak RSS of this process's own address space.
    (``ru_maxrss`` would not do: Linux carries the parent's peak into a child across fork and exec.)"""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs ({model}), {memory_gb:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}")


def span(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}" if values else "-"


def reset_peak() -> int:
    """Start this process's peak RSS again from now (``VmHWM``); its RSS now, in kB, the baseline to subtract."""
    baseline_kb = status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    return baseline_kb


def run_child(script: str, label: str, arguments: list[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``script arguments`` in a fresh interpreter from the repository's root; its result is the last line it
    prints, JSON."""
    done = subprocess.run([sys.executable, script, *arguments], env=env, cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
