"""Errors meant for people: one line naming the file or key, what is wrong, and what to do."""


class RemasterError(Exception):
    """A problem with the user's input or environment, explained in one line."""
