"""The one exception type for mistakes a user can fix; the CLI prints it as a paragraph."""


class UserError(Exception):
    """Bad input: the message says what was wrong, the value seen, and the fix.

    The command line prints it without a traceback and exits with code 2.
    """

    exit_code = 2
