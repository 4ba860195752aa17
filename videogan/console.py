"""How every `videogan` subcommand reports an error a person can act on: one red line, exit 1."""

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)
