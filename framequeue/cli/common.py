"""What every subcommand shares: the named exit codes, the one way a FrameQueueError ends a command
(`reports_errors`), the settings, logging and --lanes of the server commands, and the client commands' HTTP
client."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from framequeue.config import Settings, env_var
from framequeue.errors import FrameQueueError, ServiceUnavailable

#: named exit codes
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_UNAVAILABLE = 4
#: `wait --timeout-s` ran out before every job ended
EXIT_TIMEOUT = 5

DEFAULT_SERVER = "http://127.0.0.1:8080"

P = ParamSpec("P")
R = TypeVar("R")


def fail(exc: FrameQueueError) -> NoReturn:
    """End the command on a framequeue error: its code and message in red on stderr, exit 4 when the service
    (or a backend) is unavailable, else 1."""
    click.secho(f"error [{exc.code}]: {exc.message}", fg="red", err=True)
    sys.exit(EXIT_UNAVAILABLE if isinstance(exc, ServiceUnavailable) else EXIT_ERROR)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The command (or helper) ends through `fail` on a FrameQueueError instead of with a traceback; any other
    exception is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FrameQueueError as exc:
            fail(exc)

    return wrapper


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )


def settings_of(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings from the environment, with the root's --home and the command's own flags on top."""
    home = ctx.obj["home"]
    return Settings.from_env(home=Path(home) if home else None, **overrides)


LANES_HELP = (
    "Lanes the worker(s) receive from, comma-separated: high, normal, low (e.g. --lanes high for a group that "
    "serves only urgent jobs, --lanes normal,low for the bulk one; anti-starvation applies among the lanes "
    "given). Empty: every lane."
)


def _check_lanes(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from framequeue.brokers.urls import parse_lanes
    from framequeue.errors import InvalidParams

    try:
        return ",".join(lane.value for lane in parse_lanes(value)) if value else ""
    except InvalidParams as exc:
        raise click.BadParameter(exc.message) from exc


lanes_option = click.option("--lanes", envvar=env_var("lanes"), show_envvar=True, default="", callback=_check_lanes,
                            help=LANES_HELP)


# -- client commands -----------------------------------------------------------------------------------

server_option = click.option("--server", envvar="FQ_SERVER", show_envvar=True, default=DEFAULT_SERVER,
                             help="Base URL of the framequeue API.")


def client(server: str) -> Any:
    """The HTTP client of the client commands, sending the --api-key given to `framequeue`."""
    from framequeue.client import Client

    return Client(server, api_key=click.get_current_context().find_root().obj.get("api_key"))


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params
