"""How a stage runs: one `error: ...` line for a mistake the user can fix, a traceback for a bug,
and a Prefect server that goes away mid-stage costs the record of the flow run, never the outputs.

A user error (config, data source, download, checksum, store, checkpoint, evaluator, a service that
does not answer) ends the flow run Failed with the error's message, prints that message once as
`error: ...` and exits 1. Prefect's own error records are kept off the console (they stay in the flow
run's log on the API); `PREFECT_LOGGING_LEVEL=DEBUG` shows them again.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable

from prefect import flow
from prefect.settings import temporary_settings
from prefect.states import Failed

from pipeline import local_api
from pipeline.common import answers, check_tracking_server, load_params, refused, repo_root
from videogan.errors import CredentialsRefused, ServiceUnreachable, UserError

__all__ = ["ServiceUnreachable", "run_stage", "stage_flow"]


class _Outcome:
    """What the stage's flow body did: after it finished, a failure is Prefect's bookkeeping only."""

    finished = False
    user_error: str | None = None


def stage_flow(name: str) -> Callable:
    """`@flow(name=...)` whose user errors end the flow run Failed with their message, no traceback."""

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def run(*args, **kwargs):
            _Outcome.finished, _Outcome.user_error = False, None
            try:
                result = body(*args, **kwargs)
            except UserError as exc:
                logging.getLogger("prefect.flow_runs").debug("user error in stage %s", name, exc_info=True)
                _Outcome.user_error = str(exc)
                return Failed(message=str(exc))
            _Outcome.finished = True
            return result

        return flow(name=name)(run)

    return decorate


class _PrefectErrorsOffConsole(logging.Filter):
    """Prefect's ERROR records (tracebacks, failed event sends) on the console: the stage reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith("prefect")
            and record.levelno >= logging.WARNING
            and (record.levelno >= logging.ERROR or record.name.startswith("prefect.events"))
        )


def quiet_prefect_console() -> None:
    if os.environ.get("PREFECT_LOGGING_LEVEL", "").upper() == "DEBUG":
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in logging.Logger.manager.loggerDict]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _PrefectErrorsOffConsole) for f in handler.filters
        ):
            handler.addFilter(_PrefectErrorsOffConsole())


def check_prefect_api() -> None:
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        return
    if why := answers(f"{api.rstrip('/')}/health"):
        raise ServiceUnreachable(
            f"the Prefect API at {api} (PREFECT_API_URL) does not answer ({why}): "
            "start it (`make services`), or unset PREFECT_API_URL to run the stage on "
            "a local ephemeral API"
        )
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if status := refused(f"{api.rstrip('/')}/admin/version", auth):
        given = "was refused" if auth else "is not set"
        raise CredentialsRefused(
            f"the Prefect API at {api} asks for an auth string (HTTP {status}) and "
            f"PREFECT_API_AUTH_STRING {given}: set it to what `python -m pipeline.services "
            "env` prints (or `. .services/env`)"
        )


def server_went_away(exc: BaseException) -> bool:
    import httpx

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (httpx.TransportError, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def run_stage(stage: Callable, tracked: bool = False) -> None:
    """Validate params (before Prefect starts), check the Prefect API (and the MLflow server for a stage that
    records to it: `tracked`), run the flow, report its end."""
    load_params()
    try:
        check_prefect_api()
        if tracked:
            check_tracking_server()
    except ServiceUnreachable as exc:
        fail(str(exc))
    quiet_prefect_console()
    settings = {}
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        try:
            settings[PREFECT_API_URL] = local_api.attach(repo_root())
        except local_api.LocalApiError as exc:
            fail(str(exc))
    try:
        with temporary_settings(settings):  # Prefect read the environment when it was imported
            state = stage(return_state=True)
    except Exception as exc:
        if not server_went_away(exc):
            raise
        api = os.environ.get("PREFECT_API_URL", "the Prefect API")
        if _Outcome.finished:
            print(
                f"warning: the Prefect server at {api} went away during this stage ({exc}); the stage "
                "finished and its outputs are written, but its flow run stays 'Running' in Prefect",
                file=sys.stderr,
            )
            return
        fail(
            f"the Prefect server at {api} went away before this stage finished ({exc}); "
            "start it again (`make services`) and rerun `dvc repro`"
        )
    if state.is_completed():
        return
    if _Outcome.user_error is not None:
        fail(_Outcome.user_error)
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException):
        traceback.print_exception(exc)
        raise SystemExit(1)
    fail(state.message or f"the flow ended {state.type.value}")
