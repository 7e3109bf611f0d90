"""User-facing errors.

Every problem a user can cause (a missing file, a video that will not decode, weights
that do not match a pipeline, ...) is raised as :class:`WsgcnError` with a one-line
message that names the problem. The CLI prints it as ``error: <message>`` and exits
with status 1, without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WsgcnError(Exception):
    """A problem with the user's input, files or options; the message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
