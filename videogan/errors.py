"""The errors a person can act on: each is printed as one `error: ...` line naming what is wrong and
what to do, with no traceback, by every CLI command and pipeline stage. Anything else is a bug and
keeps its traceback.

They live here, apart from the code that raises them, so that catching them imports nothing heavy.
"""

from __future__ import annotations

import signal
from pathlib import Path


class UserError(Exception):
    """An error in what the user gave or has (config, data, files, disk, services), not in the code."""


class ConfigError(UserError, ValueError):
    """A params file or override that cannot be used, with the key path that is wrong."""


class SourceError(UserError, RuntimeError):
    """Raw data that is missing, misshapen, or too little for the requested store; the message says what to do."""


class DownloadError(UserError, RuntimeError):
    """A published file that could not be fetched or failed its checksum."""


class OfflineError(DownloadError):
    """The file's host cannot be reached at all."""


class ArchiveError(UserError, RuntimeError):
    """An archive that cannot be extracted safely."""


class StoreError(UserError, RuntimeError):
    """A clip store that is missing, truncated or disagrees with its meta.json."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used, with what is wrong and what to do."""


class EvaluatorError(UserError, RuntimeError):
    """An evaluator file that cannot be used, with what to do about it."""


class RenderError(UserError, ValueError):
    """Input that cannot be rendered (a damaged training log), with where it is wrong."""


class NoSpaceError(UserError, RuntimeError):
    """A file that did not fit on its disk; the file it would have replaced is intact."""


class TrainingDiverged(UserError, RuntimeError):
    """A loss became NaN or infinite."""


class ServiceUnreachable(UserError, RuntimeError):
    """A tracking or orchestration server named by the environment does not answer."""


class CredentialsRefused(ServiceUnreachable):
    """A server that answers but refuses this shell's credentials (or has none from it)."""


class TrainingInterrupted(UserError, RuntimeError):
    """Training stopped by a signal after saving its resume state."""

    def __init__(self, signum: int, step: int, resume_path: Path):
        self.signum, self.step, self.resume_path = signum, step, resume_path
        super().__init__(
            f"training stopped by {signal.Signals(signum).name} at step {step}; its resume state is "
            f"{resume_path}: run the same command again to resume from there"
        )

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal
