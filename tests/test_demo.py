"""``make demo``'s main job (``amci local demo``), as a user runs it: a process of its own, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AMCI = Path(sys.executable).with_name("amci")


def test_the_demo_shows_sql_over_all_three_sources_and_writes_its_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([str(AMCI), "local", "demo"], cwd=tmp_path, env={**env, "COLUMNS": "200"},
                            capture_output=True, text=True, timeout=600, check=False)

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Demo finished" in out and "no rows" not in out, out
    for title in ("AMC: top campaigns by impressions", "Amazon Ads: sponsored products campaigns by sales",
                  "Selling Partner: sales and traffic by day"):
        assert title in out, out
    assert out.count("SUCCEEDED") >= 5  # tenant, workflow, execution, two reports
    report = (tmp_path / ".local" / "demo-report.html").read_text()
    assert report.count("<svg") == 3 and report.count("<table>") == 3
