"""The error every source raises when its raw data cannot make the store the config asks for."""

from videogan.errors import SourceError  # noqa: F401
