"""``amci deploy`` and ``amci destroy``: a stage on AWS, from nothing to running and back (``amci/deploy.py``).

The account and region are ``amci``'s own ``--profile`` and ``--region``; the stage is the command's ``--stage`` or
``amci``'s (``AMCI_STAGE``). Exit codes: 0 done (or nothing to change), 1 a stack or a package failed (the reasons
are printed, one per failed resource), 2 no stage, region or credentials, or a wrong option.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.table import Table

from amci import deploy as domain
from amci.commands.common import JSON, Target, console, errors, fail, key_values, options
from shared.config import SERVICES

F = TypeVar("F", bound=Callable[..., Any])


def stage_option(verb: str) -> Callable[[F], F]:
    return click.option("--stage", "stage_name", default=None,
                        help=f"The stage to {verb} (stacks amci-<stage>*); default: amci's --stage (env AMCI_STAGE).")


ROLE = click.option("--role-arn", default=None,
                    help="A role for CloudFormation to act as, so that the caller needs no rights on the resources "
                         "(--dry-run's change sets too).")


# --profile and --region on the command too, so that both `amci --region R deploy` and `amci deploy --region R` work.
account_options = options(
    click.option("--profile", default=None, help="The AWS profile (default: amci's --profile)."),
    click.option("--region", default=None, help="The AWS region (default: amci's --region, the profile's)."),
)


@click.command("deploy")
@stage_option("deploy")
@click.option("--services", "services_text", default=None, metavar="A,B",
              help=f"The apps to deploy, comma-separated (default: all of {', '.join(SERVICES)}).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of infra/platform.yaml, e.g. NotificationEmail=ops@example.com (kept on later "
                   "deploys until changed).")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (each stack's change set) and change nothing.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the apps are packaged (default build/deploy/<stage>).")
@click.option("--monitoring/--no-monitoring", default=True, show_default=True,
              help="The monitoring stack (dashboard, alarms to the status topic, the AppRegistry application), "
                   "deployed once every app's stack exists; about $11 a month at rest.")
@ROLE
@account_options
@JSON
def deploy_command(stage_name: str | None, services_text: str | None, params: tuple[str, ...], dry_run: bool,
                   out: Path | None, monitoring: bool, role_arn: str | None, profile: str | None, region: str | None,
                   as_json: bool) -> None:
    """Deploy a stage to AWS, or update it: the bootstrap stack (artifact bucket), the platform stack, and one
    stack per app; the platform's outputs are recorded into each app's .chalice/config.json on the way."""
    stage = _stage(stage_name)
    services = _services(services_text)
    parameters = _parameters(params)
    session, account = _session(profile, region)
    with _failures(), _progress() as progress:
        if dry_run:
            with tempfile.TemporaryDirectory(prefix="amci-plan-") as work:
                done = domain.plan(session, stage, services=services, parameters=parameters,
                                   sources=domain.SOURCES, work_dir=Path(work), role_arn=role_arn,
                                   progress=progress)
        else:
            done = domain.deploy(session, stage, services=services, parameters=parameters, sources=domain.SOURCES,
                                 out_dir=out, role_arn=role_arn, progress=progress, monitoring=monitoring)
    if as_json:
        click.echo(json.dumps(_deployment_json(done, account, dry_run), indent=2, default=str))
    elif dry_run:
        _print_plan(done)
    else:
        _print_deployment(done, account)


@click.command("destroy")
@stage_option("delete")
@click.option("--delete-data", is_flag=True,
              help="Also empty (every version) and delete the platform's buckets; kept otherwise.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@ROLE
@account_options
@JSON
def destroy_command(stage_name: str | None, delete_data: bool, yes: bool, role_arn: str | None,
                    profile: str | None, region: str | None, as_json: bool) -> None:
    """Delete a stage from AWS: its monitoring stack, the app stacks, the platform stack, the bootstrap stack. The
    platform's buckets and the key they are encrypted with are kept unless --delete-data; tenants' buckets and stacks
    are never touched."""
    stage = _stage(stage_name)
    session, account = _session(profile, region)
    if not yes:
        data = "[red]EMPTIED AND DELETED[/]" if delete_data else "kept"
        stacks = [domain.monitoring_stack(stage), *(domain.app_stack(stage, s) for s in SERVICES),
                  domain.platform_stack(stage), domain.bootstrap_stack(stage)]
        console.print(f"Deleting stage [bold]{stage}[/] from account {account}, {session.region_name}: stacks "
                      f"{', '.join(stacks)} (those that exist); the platform's buckets will be {data}.",
                      highlight=False)
        click.confirm("Go ahead?", abort=True)
    with _failures(), _progress() as progress:
        done = domain.destroy(session, stage, delete_data=delete_data, sources=domain.SOURCES, role_arn=role_arn,
                              progress=progress)
    if as_json:
        click.echo(json.dumps(asdict(done), indent=2, default=str))
        return
    _results_table(f"Stage {stage} deleted", done.results)
    for bucket in done.kept:
        console.print(f"kept: s3://{bucket}")
    if done.kept_key:
        console.print(f"kept: KMS key {done.kept_key} (the kept buckets' objects are encrypted with it)")
    for bucket in done.deleted:
        console.print(f"deleted: s3://{bucket}")
    if done.kept:
        console.print(f"`amci destroy --stage {stage} --delete-data` deletes them; deploying the stage again needs "
                      "them gone (or renamed).")
    if done.tenant_stacks:
        console.print(f"[yellow]Tenants' stacks left[/] (offboard tenants before a destroy to delete them): "
                      f"{', '.join(done.tenant_stacks)}", highlight=False)


# -- options -----------------------------------------------------------------------------------------------------


def _stage(stage_name: str | None) -> str:
    target = click.get_current_context().find_object(Target) or Target()
    stage = stage_name or target.stage
    if not stage:
        fail("Which stage? Pass --stage NAME (or AMCI_STAGE).")
    try:
        domain.check_stage(stage)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stage") from None
    return stage


def _services(text: str | None) -> list[str]:
    if text is None:
        return list(SERVICES)
    named = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(named - set(SERVICES))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)} (known: {', '.join(SERVICES)})",
                                 param_hint="--services")
    return [service for service in SERVICES if service in named]


def _parameters(params: tuple[str, ...]) -> dict[str, str]:
    parameters = key_values(params, "--param")
    declared = domain.load_template((domain.SOURCES.infra / "platform.yaml").read_text()).get("Parameters", {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a parameter of infra/platform.yaml (it has "
                                 f"{', '.join(sorted(set(declared) - domain.DEPLOY_SETS))})", param_hint="--param")
    fixed = sorted(set(parameters) & domain.DEPLOY_SETS)
    if fixed:
        raise click.BadParameter(f"{', '.join(fixed)}: set by the deploy itself", param_hint="--param")
    return parameters


def _session(profile: str | None, region: str | None) -> tuple[Any, str]:
    """A boto3 session for the command's (or amci's) --profile and --region, and its account; exit 2 without a
    region or credentials."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    target = click.get_current_context().find_object(Target) or Target()
    try:
        session = boto3.Session(profile_name=profile or target.profile, region_name=region or target.region)
        if not session.region_name:
            fail("Which region? Pass --region (on amci: `amci --region eu-west-1 deploy ...`) or configure one.")
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        fail(f"No AWS account to deploy to: {exc}")
    return session, account


@contextmanager
def _failures() -> Iterator[None]:
    """A failed stack or package: its reasons, exit 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from amci.package import PackagingError

    try:
        yield
    except domain.DeployError as exc:
        _stop(str(exc), exc.reasons)
    except (PackagingError, ClientError, BotoCoreError, ValueError) as exc:
        _stop(str(exc), [])


def _stop(message: str, reasons: list[str]) -> NoReturn:
    console.print(f"[red]Failed:[/] {message}", highlight=False)
    for reason in reasons:
        console.print(f"  - {reason}", highlight=False)
    sys.exit(1)


@contextmanager
def _progress() -> Iterator[domain.Progress]:
    """A spinner on stderr with what is being waited for, and a line per stack done."""
    with errors.status("starting...") as status:
        yield domain.Progress(status=status.update, finished=lambda r: errors.print(
            f"[green]✓[/] {r.stack}: {_status(r)} ({r.seconds:.0f}s)", highlight=False),
            warn=lambda text: errors.print(f"[yellow]![/] {text}", highlight=False))


# -- output ------------------------------------------------------------------------------------------------------


def _status(result: domain.StackResult) -> str:
    return {"NO_CHANGES": "no changes", "ABSENT": "not there", "BUCKETS_RETAINED": "buckets marked to keep"}.get(
        result.status, result.status)


def _results_table(title: str, results: list[domain.StackResult]) -> None:
    table = Table("stack", "status", "seconds", title=title)
    for result in results:
        table.add_row(result.stack, _status(result), f"{result.seconds:.0f}")
    console.print(table)


def _print_deployment(done: domain.Deployment, account: str) -> None:
    _results_table(f"Stage {done.stage} deployed", done.results)
    where = Table("what", "where", title="Where things are")
    where.add_row("account / region", f"{account} / {done.region}")
    where.add_row("artifacts", f"s3://{done.artifact_bucket}/ (this deploy's under */{done.artifact_prefix})")
    for name, value in done.outputs.items():
        if name.endswith("RequestQueueUrl") or name in ("StatusTopicArn", "RawBucket", "ReportsBucket",
                                                         "StageBucket", "LakeDatabase", "AnalystRoleArn"):
            where.add_row(name, value)
    for path in done.configs:
        where.add_row("stage recorded in", str(path))
    console.print(where)
    console.print(f"Next: `amci --stage {done.stage} --region {done.region} status`, or `amci --stage {done.stage} "
                  "tenant add tenant.json`.", highlight=False)


def _print_plan(done: domain.Deployment) -> None:
    table = Table("stack", "plan", "changes", title=f"Plan for stage {done.stage} (nothing was changed)")
    for result in done.results:
        plan = {"NO_CHANGES": "no changes", "CREATE": "create", "UPDATE": "update"}.get(result.status, result.status)
        if result.status == "CREATE":
            changes = f"{len(result.changes)} resources" if result.changes else "the app's functions, once packaged"
        else:
            changes = "\n".join(f"{c.action} {c.logical_id} ({c.resource_type})"
                                + (f", replaced: {c.replacement}" if c.replacement not in ("", "False") else "")
                                for c in result.changes)
        table.add_row(result.stack, plan, changes)
    console.print(table)
    if done.artifact_prefix:
        console.print(f"ArtifactPrefix: {done.artifact_prefix}", highlight=False)


def _deployment_json(done: domain.Deployment, account: str, dry_run: bool) -> dict[str, Any]:
    return {"stage": done.stage, "account": account, "region": done.region, "dryRun": dry_run,
            "artifactBucket": done.artifact_bucket, "artifactPrefix": done.artifact_prefix,
            "stacks": [asdict(result) for result in done.results], "outputs": dict(done.outputs),
            "configs": [str(path) for path in done.configs]}
