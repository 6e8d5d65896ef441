"""The analyst notebooks (``notebooks/*.ipynb``) run top to bottom against the local cloud, each in a Jupyter kernel
of its own: another process, which knows only the endpoints file (``AMCI_ENDPOINTS``) and reaches the cloud over
loopback, as an analyst's notebook does. A cell that raises fails the test; the outputs are then read back."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from amci.sdk import Insights
from local.cloud import ROOT, LocalCloud
from tests.support import FAST

NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 360  # above the lake notebook's own five-minute wait for its tables
KERNEL_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")  # nothing of the local cloud's own process

pytestmark = pytest.mark.usefixtures("fast_amc", "fast_ads", "fast_sp")


@pytest.fixture(scope="module")
def tenant() -> str:
    """The customer id notebooks 02 and 03 share (02 onboards it, 03 finds it)."""
    return f"nbtest-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def insights(endpoints_file: Path) -> Insights:
    return Insights.local(endpoints_file, timeout_s=120)


@pytest.fixture
def amc_delivers_to(cloud: LocalCloud) -> Iterator[Any]:
    """``deliver(bucket)``: the sandbox's demo AMC instance writes its results into ``bucket`` until the test ends,
    as a real instance delivers into the bucket it was set up with."""
    amc, demo = cloud.sandbox.amc, cloud.sandbox.credentials
    before = amc.state.instance(demo["amc_instance_id"]).results_bucket

    def register(bucket: str | None) -> None:
        amc.register_instance(demo["amc_instance_id"], demo["advertiser_id"], demo["marketplace_id"], bucket)

    yield register
    register(before)


def run(name: str, endpoints_file: Path, **env: str) -> nbformat.NotebookNode:
    """Execute notebook ``name`` as it is stored, in ``notebooks/``; raises CellExecutionError on a failing cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not [c for c in notebook.cells if c.get("outputs")], f"{name} is stored with outputs"
    kernel_env = {key: os.environ[key] for key in KERNEL_ENV if key in os.environ}
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env={**kernel_env, "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into the work tree
                        "AMCI_ENDPOINTS": str(endpoints_file), **env})
    return notebook


def text(notebook: nbformat.NotebookNode, tag: str) -> str:
    """What the cells tagged ``tag`` printed and displayed (HTML tables as their cells' text)."""
    cells = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    assert cells, f"no cell tagged {tag}"
    shown = []
    for output in (o for c in cells for o in c.outputs):
        if output.output_type == "stream":
            shown.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            data = output.data
            shown.append(re.sub(r"<[^>]+>", " ", data["text/html"]) if "text/html" in data else data["text/plain"])
    return "\n".join(shown)


def test_the_notebooks_are_stored_without_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01_amazon_ads_auth.ipynb", "02_tenants.ipynb", "03_workflows.ipynb", "04_ads_reporting.ipynb",
                     "05_selling_partner_auth.ipynb", "06_sp_reporting.ipynb", "07_lake_query_and_plot.ipynb"]
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in notebook.cells
                   if c.cell_type == "code"), name


def test_amazon_ads_auth_stores_a_credential_set_that_works(cloud: LocalCloud, endpoints_file: Path,
                                                           insights: Insights) -> None:
    demo = cloud.sandbox.credentials
    notebook = run("01_amazon_ads_auth.ipynb", endpoints_file)

    auth_id = re.search(r"authId\s+(nbdemo-ads-\w+)", text(notebook, "store")).group(1)  # type: ignore[union-attr]
    assert "tokenExpiresAt" in text(notebook, "check")
    assert re.search(r"^SUCCEEDED: \d+ profiles in 3 of 3 regions", text(notebook, "profiles"))
    assert demo["profile_id"] in text(notebook, "profiles")
    assert auth_id in [c.auth_id for c in insights.auth.list()]
    assert insights.auth.check(auth_id).token_expires_at is not None


def test_tenants_onboards_the_tenant(endpoints_file: Path, insights: Insights, tenant: str) -> None:
    notebook = run("02_tenants.ipynb", endpoints_file, AMCI_CUSTOMER_ID=tenant)

    assert text(notebook, "onboard").startswith(f"SUCCEEDED: tenant {tenant} onboarded")
    assert tenant in text(notebook, "tenants")
    record = insights.tenants.get(tenant).check().details["tenant"]
    assert record["status"] == "ACTIVE" and record["customerName"] == "Notebook demo brand (renamed)"


def test_workflows_runs_an_execution_to_success_and_cancels_one(cloud: LocalCloud, endpoints_file: Path,
                                                                insights: Insights, tenant: str) -> None:
    # Executions run until let go, so that the one the notebook cancels is still running when the cancel comes,
    # however slow the machine; a thread lets the others go as soon as they run.
    amc = cloud.sandbox.amc
    instance = amc.state.instance(cloud.sandbox.credentials["amc_instance_id"])
    earlier, done = len(instance.executions), threading.Event()

    def let_go() -> None:
        while not done.wait(0.1):
            started = list(instance.executions.values())[earlier:]  # in order: run, adhoc, cancel, backfill x2
            for execution in started[:2] + started[3:]:  # all but the one the notebook cancels
                amc.state.end_running(instance.instance_id, execution.execution_id)

    amc.timings = replace(FAST, running_s=600)
    releaser = threading.Thread(target=let_go, daemon=True)
    releaser.start()
    try:
        notebook = run("03_workflows.ipynb", endpoints_file, AMCI_CUSTOMER_ID=tenant)
    finally:
        done.set()
        releaser.join()
        amc.timings = replace(FAST)
        amc.state.end_running(instance.instance_id)  # nothing left held for later tests

    assert re.search(r"^SUCCEEDED: ", text(notebook, "run"), re.MULTILINE)  # after any progress lines
    assert text(notebook, "adhoc").strip().endswith("SUCCEEDED")
    cancelled = re.search(r"^SUCCEEDED: execution (\S+) cancelled", text(notebook, "cancel"), re.MULTILINE)
    assert cancelled, text(notebook, "cancel")
    assert "2 of 2 windows succeeded" in text(notebook, "backfill")
    executions = insights.executions.list(tenant).check().details["executions"]
    by_id = {e["workflowExecutionId"]: e["executionStatus"] for e in executions
             if e["workflowId"] == "nb_top_campaigns"}
    assert by_id.pop(cancelled.group(1)) == "CANCELLED" and list(by_id.values()) == ["SUCCEEDED"] * 3, executions
    assert insights.executions.schedules(tenant).list().check().details["schedules"] == []  # deleted at the end


def test_ads_reporting_requests_backfills_and_schedules(endpoints_file: Path, insights: Insights) -> None:
    notebook = run("04_ads_reporting.ipynb", endpoints_file)

    assert "SUCCEEDED: report nb_sp_campaigns (spCampaigns" in text(notebook, "report")
    assert "2 of 2 windows succeeded" in text(notebook, "backfill")
    assert "schedule nb-sp-campaigns-weekly created" in text(notebook, "schedule")
    assert "nb-sp-campaigns-weekly" not in str(insights.ads.schedules.list().check().details)


def test_selling_partner_auth_stores_both_kinds_of_grant(endpoints_file: Path) -> None:
    notebook = run("05_selling_partner_auth.ipynb", endpoints_file)

    assert "tokenExpiresAt" in text(notebook, "store") and "tokenExpiresAt" in text(notebook, "add")
    assert "SUCCEEDED: report nb_listings (GET_MERCHANT_LISTINGS_ALL_DATA" in text(notebook, "report")


def test_sp_reporting_requests_and_schedules(endpoints_file: Path, insights: Insights) -> None:
    notebook = run("06_sp_reporting.ipynb", endpoints_file)

    assert "SUCCEEDED: report nb_sales_traffic (GET_SALES_AND_TRAFFIC_REPORT" in text(notebook, "report")
    assert "schedule nb-market-basket-weekly created" in text(notebook, "schedule")
    assert "nb-market-basket-weekly" not in str(insights.sp.schedules.list().check().details)


def test_lake_notebook_queries_all_three_sources_and_plots(endpoints_file: Path, amc_delivers_to: Any) -> None:
    customer = f"nbtest-{uuid.uuid4().hex[:6]}"  # a tenant of its own, which the notebook onboards
    amc_delivers_to(f"amc-{customer}-results")
    notebook = run("07_lake_query_and_plot.ipynb", endpoints_file, AMCI_CUSTOMER_ID=customer)

    assert text(notebook, "amc-run").strip().endswith("SUCCEEDED")
    counts = {tag: re.search(r": (\d+) (campaigns|days)", text(notebook, tag)) for tag in ("amc-rows", "ads-rows",
                                                                                          "sp-rows")}
    assert all(found and int(found.group(1)) > 0 for found in counts.values()), counts
    assert int(counts["sp-rows"].group(1)) == 7  # type: ignore[union-attr]
    chart = next(c for c in notebook.cells if "chart" in c.metadata.get("tags", []))
    images = [o for o in chart.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 1 and len(images[0].data["image/png"]) > 10_000
