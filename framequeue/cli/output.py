"""How the commands that print records print them: `-o/--output` (table for people; json, one document: an
object, or an array for a list; jsonl, one object a line, for streams) and `-q/--quiet` (the ids alone, one a
line, for `xargs` and shell loops). The JSON is the API's records as they came, so it is as stable as the
API."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_HELP = ("table: for people; json: one JSON document (an object, or an array for a list); "
               "jsonl: one JSON object a line.")


def output_option(default: str = "table", formats: Sequence[str] = ("table", "json")) -> Callable[[F], F]:
    """The command's -o/--output; its default is what the command printed before the option existed."""
    return click.option("-o", "--output", "output", type=click.Choice(list(formats)), default=default,
                        help=OUTPUT_HELP)


def quiet_option(what: str = "ids") -> Callable[[F], F]:
    return click.option("-q", "--quiet", is_flag=True, help=f"Print only the {what}, one a line.")


def emit_one(record: Mapping[str, Any], output: str, table: Callable[[Mapping[str, Any]], None], *,
             quiet: bool = False, id_key: str = "id") -> None:
    """Print one record as -o/-q ask; `table` prints it for people."""
    if quiet:
        click.echo(record[id_key])
    elif output == "table":
        table(record)
    else:
        click.echo(json.dumps(record, indent=None if output == "jsonl" else 2))


def emit_many(records: Sequence[Mapping[str, Any]], output: str,
              table: Callable[[Sequence[Mapping[str, Any]]], None], *, quiet: bool = False,
              id_key: str = "id") -> None:
    """Print a list of records as -o/-q ask (json: one array, even of one record or none)."""
    if quiet:
        for record in records:
            click.echo(record[id_key])
    elif output == "table":
        table(records)
    elif output == "jsonl":
        for record in records:
            click.echo(json.dumps(record))
    else:
        click.echo(json.dumps(list(records), indent=2))
