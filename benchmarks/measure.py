"""What every benchmark measures the same way: a process's peak memory, the machine, a range of figures."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


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
