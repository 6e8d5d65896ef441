"""What every command shares: the platform it talks to (``--endpoints`` for the local cloud, ``--stage`` with
``--profile``/``--region`` for AWS, chosen on ``amci`` itself), how outcomes are shown (tables for people, ``--json``
for scripts), live progress, and exit codes scripts can rely on:

0  the request succeeded (or found no data)
1  the platform answered that it did not (FAILED, REJECTED, ERROR...): the message says why
2  nothing to talk to, no answer in time, AWS refused the caller, or the command was used wrongly: the message
   says what to do

Messages go to stderr, so that ``--json`` leaves nothing but JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as AwsConnectionError
from rich.console import Console
from rich.table import Table

from amci.platform import PlatformNotFound
from amci.sdk import Insights, Outcome, Progress, RequestFailed
from shared.aws import error_code

console = Console()
errors = Console(stderr=True)
NO_ANSWER = ("`amci status` shows what waits where (and the dead-letter queues); with the local cloud, "
             "`amci local up --verbose` logs every step.")
EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired")

JSON = click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON (for scripts).")
TIMEOUT = click.option("--timeout", type=float, default=3600, show_default=True,
                       help="Seconds to wait for the outcome.")
TENANT = click.option("--tenant", "customer_id", required=True, help="The tenant (customer id).")


@dataclass(frozen=True)
class Target:
    """Where the platform is: the local cloud's endpoints file, or a deployed stage."""

    endpoints: Path | None = None
    stage: str | None = None
    profile: str | None = None
    region: str | None = None


def options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, applied in the order given (as they show in ``--help``)."""
    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


target_options = options(
    click.option("--endpoints", type=click.Path(path_type=Path), envvar="AMCI_ENDPOINTS", default=None,
                 help="The local cloud's endpoints file (default .local/endpoints.json; env AMCI_ENDPOINTS)."),
    click.option("--stage", envvar="AMCI_STAGE", default=None,
                 help="A stage deployed to AWS (stack amci-<stage>; env AMCI_STAGE) instead of the local cloud."),
    click.option("--profile", default=None, help="The AWS profile for --stage (default: the environment's)."),
    click.option("--region", default=None, help="The AWS region for --stage (default: the profile's)."),
)


def insights(timeout: float = 300, progress: Callable[[Progress], None] | None = None) -> Insights:
    """The SDK for the platform chosen on ``amci``; exit 2 when there is none to talk to."""
    target = click.get_current_context().find_object(Target) or Target()
    if target.stage:
        return Insights.aws(target.stage, target.profile, target.region, timeout_s=timeout, progress=progress)
    return Insights.local(target.endpoints, timeout_s=timeout, progress=progress)


def ask(call: Callable[[Insights], Outcome], timeout: float, waiting: str = "waiting for the platform") -> Outcome:
    """Make ``call`` with live progress; exit 2 when no answer came within ``timeout``."""
    with live_progress(waiting) as progress:
        try:
            return call(insights(timeout, progress))
        except TimeoutError:
            fail(f"No answer within {timeout:.0f}s: {NO_ANSWER}")


@contextmanager
def platform_errors() -> Iterator[None]:
    """What goes wrong talking to the platform, as advice and an exit code instead of a traceback: 1 when the
    platform answered that a request failed, 2 when there is nothing to talk to or AWS refuses the caller."""
    try:
        yield
    except PlatformNotFound as exc:
        fail(str(exc))
    except RequestFailed as exc:
        fail(f"{exc.outcome.status} {exc.outcome.summary}", 1)
    except TimeoutError:
        fail(f"No answer in time: {NO_ANSWER}")
    except (BotoCoreError, ClientError) as exc:
        fail(aws_advice(exc))


def aws_advice(exc: BotoCoreError | ClientError) -> str:
    """What to do about an AWS error: start the local cloud, pick another profile or region, renew credentials."""
    if isinstance(exc, AwsConnectionError | HTTPClientError):
        return (f"Nothing answers ({exc}). The local cloud: is `amci local up` running? An endpoints file left by "
                "one that stopped names a dead port. A deployed stage: check --region.")
    if isinstance(exc, ProfileNotFound):
        return f"{exc}: check --profile (`aws configure list-profiles` lists the profiles)."
    if isinstance(exc, NoCredentialsError):
        return "No AWS credentials: pass --profile, or set them in the environment (AWS_ACCESS_KEY_ID...)."
    if isinstance(exc, NoRegionError):
        return "Which region? Pass --region on amci, or configure one for the profile."
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in EXPIRED:
            return f"The AWS credentials have expired ({code}): renew them (e.g. `aws sso login`) and run again."
        return (f"AWS refused {exc.operation_name}: {exc.response['Error'].get('Message') or code} ({code}). Check "
                "--profile and --region, and that the caller has the rights the README lists.")
    return f"AWS: {exc}. Check --profile and --region."


def finish(outcome: Outcome, as_json: bool, show: Callable[[Outcome], None] | None = None) -> NoReturn:
    """Print ``outcome`` (JSON, or its status line then ``show``'s tables) and exit 0 when it succeeded, else 1."""
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), indent=2, default=str))
    else:
        colour = "green" if outcome.ok else "red"
        console.print(f"[{colour}]{outcome.status}[/] {outcome.summary}", highlight=False)
        (show or show_lists)(outcome)
    sys.exit(0 if outcome.ok else 1)


def show_lists(outcome: Outcome) -> None:
    """Each list of records in the outcome's details as a table."""
    for name, value in outcome.details.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            records_table(name, value)


def records_table(title: str, records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    columns = list(columns or dict.fromkeys(key for record in records for key in record))[:10]
    table = Table(*columns, title=f"{title} ({len(records)})")
    for record in records:
        table.add_row(*(_cell(record.get(c)) for c in columns))
    console.print(table)


@contextmanager
def live_progress(waiting: str) -> Iterator[Callable[[Progress], None]]:
    """A spinner on stderr that long jobs update with where they are."""
    with Console(stderr=True).status(waiting) as status:
        def update(progress: Progress) -> None:
            counted = f" {progress.done}/{progress.total} done" if progress.total else ""
            status.update(f"{progress.what}: {progress.status}{counted} ({progress.elapsed_s:.0f}s)")

        yield update


def json_argument(text: str, name: str) -> dict[str, Any]:
    """A JSON object given as text or ``@file``; a usage error (exit 2) naming ``name`` otherwise."""
    try:
        value = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"not JSON (text, or @FILE to read a file): {exc}", param_hint=name) from None
    if not isinstance(value, dict):
        raise click.BadParameter("a JSON object ({...})", param_hint=name)
    return value


def key_values(pairs: Sequence[str], name: str) -> dict[str, str]:
    """``("k=v", ...)`` -> ``{"k": "v"}``; a usage error naming ``name`` otherwise."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint=name)
        found[key] = value
    return found


def fail(message: str, exit_code: int = 2) -> NoReturn:
    """Say what went wrong and what to do, on stderr, and exit (2: nothing to talk to or a usage error)."""
    errors.print(f"[red]{message}[/]", highlight=False, soft_wrap=True)
    sys.exit(exit_code)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)

