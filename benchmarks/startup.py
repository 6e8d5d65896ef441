"""Start-up costs: each service's cold import (what a Lambda cold start pays before the first event) and the
local cloud's start, each in fresh processes, medians of several runs. The baseline row is the import every
Lambda function here pays anyway (boto3 and the Chalice runtime), measured in the same run.

Usage: python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amci.stages import SERVICES_DIR, stage_variables  # noqa: E402
from shared.config import SERVICES  # noqa: E402

_IMPORT = """
import os, sys, time
sys.path.insert(0, {path!r})
os.environ.update({env!r})
started = time.perf_counter()
{statement}
print((time.perf_counter() - started) * 1000)
"""

_CLOUD = """
import json
from local.cloud import LocalCloud
cloud = LocalCloud(port=0).start()
print(json.dumps(cloud.timings))
cloud.stop()
"""


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def import_ms(statement: str, path: Path, env: dict[str, str], runs: int) -> float:
    code = _IMPORT.format(path=str(path), env=env, statement=statement)
    return statistics.median(float(_run(code).strip().splitlines()[-1]) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    env = {"AWS_DEFAULT_REGION": "us-east-1"}
    baseline = import_ms("import boto3, chalice.app", ROOT, env, runs)
    print(f"| import (median of {runs} fresh processes) | ms | over baseline |")
    print("|---|---:|---:|")
    print(f"| baseline: `import boto3, chalice.app` | {baseline:.0f} | - |")
    for service in SERVICES:
        variables = {**env, **stage_variables(service, "local")}
        ms = import_ms("import app", SERVICES_DIR / service, variables, runs)
        print(f"| services/{service}/app.py | {ms:.0f} | +{ms - baseline:.0f} |")

    phases = [json.loads(_run(_CLOUD).strip().splitlines()[-1]) for _ in range(max(1, runs // 2))]
    print(f"\n| local cloud start (median of {len(phases)}) | s (cumulative) |")
    print("|---|---:|")
    for phase in phases[0]:
        print(f"| {phase} | {statistics.median(p[phase] for p in phases):.2f} |")


if __name__ == "__main__":
    main()
