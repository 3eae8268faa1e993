"""The one exception type that means "the user gave us something we cannot use".

Every command-line entry point turns a :class:`UserError` into a single line on
stderr and exit code 2. Anything else escaping is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or environment: missing file, corrupt image, mismatched sizes, ..."""

    exit_code = 2
