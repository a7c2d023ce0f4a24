"""Which store holds the history: a JSON folder, or a database when one is configured.

An owner names whose history a store holds: "" for the shared history, "users/<hash>" for a
signed-in user (chatbot/access.py). On the JSON folder it is a subfolder; in the database, a column.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from history.stores.atomic import tighten
from history.stores.base import HistoryStore
from history.stores.json_store import JsonHistoryStore
from history.stores.sql_schema import (
    conversations,
    engine_for,
    ensure_upgraded,
    is_database_url,
    transaction,
)
from history.stores.sql_store import SqlHistoryStore, owners

USERS_DIR = "users"
_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,100}(/[A-Za-z0-9_-]{1,100})*$")
_log = logging.getLogger(__name__)


def check_owner(owner: str) -> str:
    """An owner is "" or relative folder names of letters, digits, '-' and '_' (never '..')."""
    if owner != "" and not (isinstance(owner, str) and _OWNER.fullmatch(owner)):
        raise ValueError(f"not a valid history owner: {owner!r}")
    return owner


def owner_for(history_dir: Path, folder: Path) -> str:
    """The owner of the folder chatbot.access chose: its path under CHATBOT_HISTORY_DIR."""
    relative = Path(folder).relative_to(history_dir).as_posix()
    return check_owner("" if relative == "." else relative)


def open_store(target: str | Path | Engine, owner: str = "") -> HistoryStore:
    """A database URL or Engine: SqlHistoryStore; anything else is a folder: JsonHistoryStore."""
    check_owner(owner)
    if isinstance(target, Engine) or is_database_url(target):
        return SqlHistoryStore(target, owner)
    root = Path(target)
    folder = root
    for name in Path(owner).parts:  # the folders above a user's own, which the store tightens itself
        tighten(folder)
        folder = folder / name
    return JsonHistoryStore(folder)


def history_store(
    history_dir: Path, folder: Path, database: str | Engine | None = None, *, legacy: Path | None = None
) -> HistoryStore:
    """The store for the folder chatbot.access chose: that folder, or its owner in the database.

    `database` is the configured history database, e.g. st.connection("history", type="sql").engine,
    or a URL; None keeps the JSON folder. `legacy` is where an earlier version kept the same user's
    history: it is moved to `folder` first, when it is there and `folder` is not.
    """
    target = history_dir if database is None else database
    owner = owner_for(history_dir, folder)
    if legacy is not None:
        owner = adopt(target, owner_for(history_dir, legacy), owner)
    return open_store(target, owner)


def adopt(target: str | Path | Engine, old: str, new: str) -> str:
    """Move an owner's history to a new owner name in one atomic step, unless the new one has some;
    any number of sessions may try at once. The owner to use: `old` only if a folder cannot move."""
    if isinstance(target, Engine) or is_database_url(target):
        _adopt_rows(target, old, new)
        return new
    root = Path(target)
    try:
        os.rename(root / check_owner(old), root / check_owner(new))  # replaces `new` only if it is empty
    except FileNotFoundError:  # nothing there, or another session moved it first
        pass
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # not "the new folder has history"
            _log.warning("could not move the history folder %s to %s: %s", old, new, error)
            return old
    return new


def _adopt_rows(target: str | Engine, old: str, new: str) -> None:
    engine = engine_for(target)
    ensure_upgraded(engine)
    with transaction(engine, write=True) as connection:
        has_new = sa.select(conversations.c.serial).where(conversations.c.owner == new).limit(1)
        taken = connection.scalar(has_new)
        if taken is None:  # a second session's UPDATE waits for the first's rows, then finds none left
            connection.execute(
                sa.update(conversations).where(conversations.c.owner == old).values(owner=new)
            )


def store_owners(target: str | Path | Engine) -> list[str]:
    """Every owner with history at the target: "" and each users/<name> folder, or the database's."""
    if isinstance(target, Engine) or is_database_url(target):
        return owners(target)
    users = Path(target) / USERS_DIR
    found = [""]
    if users.is_dir():
        found += sorted(
            f"{USERS_DIR}/{path.name}"
            for path in users.iterdir()
            if path.is_dir() and not path.is_symlink() and _OWNER.fullmatch(path.name)
        )
    return found
