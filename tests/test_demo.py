"""``make demo``'s main job (``amci local demo``), as a user runs it: a process of its own, from any directory; with
``--keep``, its local cloud serves on until Ctrl-C, so that the "query more" commands it prints work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

AMCI = Path(sys.executable).with_name("amci")
QUERY_MORE = ("lake", "query", "SELECT * FROM campaigns LIMIT 5", "--database", "amci_local_adtech_ads_report")


def test_the_demo_shows_sql_over_all_three_sources_writes_its_report_and_keeps_serving_its_tables(
        tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "COLUMNS": "200"}
    endpoints = tmp_path / "endpoints.json"
    demo = subprocess.Popen([str(AMCI), "--endpoints", str(endpoints), "local", "demo", "--keep"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hang_guard = threading.Timer(600, demo.kill)
    hang_guard.start()
    try:
        out = _until_serving(demo)
        queried = subprocess.run([str(AMCI), "--endpoints", str(endpoints), *QUERY_MORE, "--json"], env=env,
                                 capture_output=True, text=True, timeout=120, check=False)
        demo.send_signal(signal.SIGINT)
        rest, errors = demo.communicate(timeout=90)
    finally:
        hang_guard.cancel()
        demo.kill()

    assert demo.returncode == 0, out + rest + errors
    assert "Demo finished" in out and "no rows" not in out, out
    for title in ("AMC: top campaigns by impressions", "Amazon Ads: sponsored products campaigns by sales",
                  "Selling Partner: sales and traffic by day"):
        assert title in out, out
    assert out.count("SUCCEEDED") >= 5  # tenant, workflow, execution, two reports
    report = (tmp_path / ".local" / "demo-report.html").read_text()
    assert report.count("<svg") == 3 and report.count("<table>") == 3
    assert f"amci --endpoints {endpoints} {' '.join(QUERY_MORE[:2])} \"{QUERY_MORE[2]}\"" in out, out
    assert queried.returncode == 0 and len(json.loads(queried.stdout)) == 5, queried.stdout + queried.stderr
    assert not endpoints.exists()  # Ctrl-C stopped the cloud


def _until_serving(demo: subprocess.Popen) -> str:
    """The demo's output up to its "Ctrl-C stops" line (the whole output if it ended before)."""
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if "Ctrl-C stops" in line:
            break
    return "".join(lines)
