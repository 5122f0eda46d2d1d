"""The one exception type for mistakes a user can fix; the CLI prints it as a paragraph."""


class UserError(Exception):
    """Bad input: the message says what was wrong, the value seen, and the fix.

    The command line prints it without a traceback and exits with code 2.
    """

    exit_code = 2


def row_of(table: dict, name, kind: str, example: str):
    """The row `name` of a table (modes, heads...), or UserError listing the rows there are."""
    try:
        return table[str(name)]
    except KeyError:
        raise UserError(
            f"Unknown {kind} {name!r}. Choose one of {', '.join(table)}, e.g. {example}."
        ) from None
