"""How every `videogan` subcommand reports an error a person can act on: one red line, exit 1.

What counts as such an error is one family, `videogan.errors.UserError`, for the CLI and the pipeline's
stages alike; anything else is a bug and keeps its traceback.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from videogan.errors import UserError


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """A UserError inside becomes one `error:` line and exit 1."""
    try:
        yield
    except UserError as exc:
        fail(str(exc))
