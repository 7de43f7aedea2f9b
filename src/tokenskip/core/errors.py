"""The one exception type the CLI turns into a single clear line and a non-zero exit."""


class TokenSkipError(Exception):
    """Bad input or configuration: the message names the file, record and field."""
