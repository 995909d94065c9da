"""Errors raised on bad input; their messages name the file, the record and the field."""


class DataValidationError(ValueError):
    """A data file or record does not have the documented schema."""


class DataUnavailableError(DataValidationError):
    """No copy of a benchmark's data can be read here (no local files, and no Hub id or no Hub)."""
