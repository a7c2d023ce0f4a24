"""Every failure a history store reports, in one tree, each with a message that says what to do.

    HistoryError
    ├── ConversationNotFound     (also a KeyError)     no conversation with that id
    ├── ConversationExists       (also FileExistsError) the id is taken
    ├── ConversationChanged      (also a ValueError)   another tab or server changed it first
    ├── InvalidConversation      (also a ValueError)   content that does not fit the schema
    │   └── ConversationTooLarge                       over the 20 MB limit of one conversation
    └── HistoryUnavailable                             the history cannot be written or reached now
        ├── HistoryFull                                the disk is full
        ├── HistoryReadOnly                            the folder cannot be written
        ├── HistoryBusy                                another window holds the conversation's lock
        └── DatabaseUnreachable                        the history database does not answer

Stores raise only these (never a bare OSError, filelock.Timeout or SQLAlchemyError), so a page
catches HistoryError in one place and shows `message`. HistoryUnavailable means "try again once
the cause is gone": nothing was changed. The translation happens in one place per kind of store:
history/stores/folder_faults.py (OSError) and history/stores/sql_faults.py (SQLAlchemy). Arguments a
caller got wrong (a title that is not a string, a field update() may not change) stay TypeError or ValueError:
those are bugs to fix, not failures to show.
"""

from __future__ import annotations


class HistoryError(Exception):
    """A history failure; `message` is the sentence a user is shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _AboutOneConversation(HistoryError):
    """A failure about one conversation: its message, `said`, names it by id."""

    said = ""

    def __init__(self, conversation_id: object) -> None:
        super().__init__(f"Conversation {conversation_id!r} {self.said}")
        self.conversation_id = conversation_id

    def __str__(self) -> str:  # a KeyError would quote the message
        return self.message


class ConversationNotFound(_AboutOneConversation, KeyError):
    """No conversation with that id (or the id is not a valid one)."""

    said = (
        "is not in the history: it may have been deleted in another window. "
        "History → Recently deleted can bring it back."
    )


class ConversationExists(_AboutOneConversation, FileExistsError):
    """The id is taken: create() and restore() refuse to replace a conversation."""

    said = "already exists; it was left as it is."


class ConversationChanged(_AboutOneConversation, ValueError):
    """The conversation changed since the caller read it (another tab or server wrote it)."""

    said = "changed in another tab or window; it was reloaded, try again."


class InvalidConversation(HistoryError, ValueError):
    """A file or import whose content does not fit the history schema."""


class ConversationTooLarge(InvalidConversation):
    """Saving would take a conversation over the size limit of one conversation."""


class HistoryUnavailable(HistoryError):
    """The history cannot be read or written right now; nothing was changed."""


class HistoryFull(HistoryUnavailable):
    """No space is left where the history is kept."""


class HistoryReadOnly(HistoryUnavailable):
    """The history folder (or database) refuses writes."""


class HistoryBusy(HistoryUnavailable):
    """Another window or server holds the conversation's lock for longer than a save may wait."""


class DatabaseUnreachable(HistoryUnavailable):
    """The history database did not answer (stopped, restarting, or frozen)."""
