"""Errors a user can fix: bad input files, bad config, data that cannot be downloaded here."""


class UserError(ValueError):
    """Printed as one clear message (what, which file/row/key, what to do), without a traceback."""


class DataError(UserError):
    """A raw or intermediate data file is missing, empty or malformed."""
