"""The one exception type for mistakes a user can fix; the CLI prints it as a paragraph."""

# torch's DataLoader re-raises a worker's exception as `type(text)`, the text being
# "Caught UserError in DataLoader worker process N.\nOriginal Traceback..." and ending in
# the original "<module>.UserError: <message>" (torch.utils._utils.ExceptionWrapper).
# tests/test_messy_folders.py fails if that format moves.
_WORKER_PREFIX = "Caught UserError in DataLoader worker"
_ORIGINAL = f"{__name__}.UserError: "


class UserError(Exception):
    """Bad input: the message says what was wrong, the value seen, and the fix.

    The command line prints it without a traceback and exits with code 2.
    """

    exit_code = 2

    def __init__(self, *args: object) -> None:
        text = args[0] if len(args) == 1 else None
        if isinstance(text, str) and text.startswith(_WORKER_PREFIX) and _ORIGINAL in text:
            args = (text.rsplit(_ORIGINAL, 1)[1].strip(),)  # the paragraph, not the traceback
        super().__init__(*args)


def row_of(table: dict, name, kind: str, example: str):
    """The row `name` of a table (modes, heads...), or UserError listing the rows there are."""
    try:
        return table[str(name)]
    except KeyError:
        raise UserError(
            f"Unknown {kind} {name!r}. Choose one of {', '.join(table)}, e.g. {example}."
        ) from None
