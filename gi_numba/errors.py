"""The one exception a user is meant to see.

Every problem caused by the user's input (a missing file, an image that is too
small, a corrupt model file, a diverging fit) raises :class:`GIError` with one
sentence that says what is wrong. The CLI prints that sentence and exits with
code 2; anything else escaping is a bug.
"""


class GIError(Exception):
    """A problem with the user's input or request, explained in one line."""


class CorruptFile(GIError):
    """The bytes are not a valid ``.gi`` file of a version we read."""
