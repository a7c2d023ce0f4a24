"""The one place the JSON folder store turns OSError into history/errors.py's exceptions, so a page
shows the user what happened to the folder (full, read-only, gone) and what to do about it."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from history.errors import HistoryError, HistoryFull, HistoryReadOnly, HistoryUnavailable

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_ONLY = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def folder_error(root: Path, error: OSError, *, writing: bool) -> HistoryUnavailable:
    """The exception, with its message for the user, for an OSError met in the history folder."""
    cause = error.strerror or str(error) or type(error).__name__
    if error.errno in _FULL:
        return HistoryFull(
            f"The disk where the history is kept ({root}) is full: the change was not saved. "
            "Free some space, or set CHATBOT_HISTORY_DIR to a folder on another disk, then try again."
        )
    if writing and error.errno in _READ_ONLY:
        return HistoryReadOnly(
            f"The history folder {root} is read-only ({cause}): the change was not saved. "
            "Make it writable for the app, or set CHATBOT_HISTORY_DIR to a folder it can write, "
            "then try again."
        )
    doing = "written" if writing else "read"
    return HistoryUnavailable(
        f"The history folder {root} could not be {doing} ({cause}): nothing was changed. "
        "Check that the folder (CHATBOT_HISTORY_DIR) exists and its disk is reachable, then try again."
    )


@contextmanager
def folder_faults(root: Path, *, writing: bool) -> Iterator[None]:
    """Raise history errors only: an OSError from the block becomes HistoryFull, HistoryReadOnly or
    HistoryUnavailable naming the folder; history errors pass unchanged."""
    try:
        yield
    except HistoryError:
        raise  # ConversationExists is an OSError too, and already says what happened
    except OSError as error:
        raise folder_error(root, error, writing=writing) from error
