"""Errors raised on bad input; their messages name the file, the record and the field."""


class DataValidationError(ValueError):
    """A data file or record does not have the documented schema."""
