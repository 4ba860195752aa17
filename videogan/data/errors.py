"""The error every source raises when its raw data cannot make the store the config asks for."""


class SourceError(RuntimeError):
    """Raw data that is missing, misshapen, or too little for the requested store; the message says what to do."""
