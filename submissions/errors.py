"""The one exception type that means "the user asked for something we refuse".

CLIs catch it and print a single line (`error: ...`) with a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input, a missing file, an output that already exists, a corrupted archive."""
