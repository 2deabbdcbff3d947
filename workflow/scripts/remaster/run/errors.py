"""Errors meant for people: one line naming the file or key, what is wrong, and what to do."""


class RemasterError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def first_line(error: BaseException, limit: int = 240) -> str:
    """An exception's first line (its type's name when it has no text), cut to `limit` characters: what a
    one-line message quotes of a library's error."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
