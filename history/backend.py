"""Which store holds the history: a JSON folder, or a database when one is configured.

An owner names whose history a store holds: "" for the shared history, "users/<hash>" for a
signed-in user (chatbot/access.py). On the JSON folder it is a subfolder; in the database, a column.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import Engine

from history.json_store import JsonHistoryStore
from history.sql_schema import is_database_url, owners
from history.sql_store import SqlHistoryStore
from history.store import HistoryStore

USERS_DIR = "users"
_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,100}(/[A-Za-z0-9_-]{1,100})*$")


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
    return JsonHistoryStore(root / owner if owner else root)


def history_store(history_dir: Path, folder: Path, database: str | Engine | None = None) -> HistoryStore:
    """The store for the folder chatbot.access chose: that folder, or its owner in the database.

    `database` is the configured history database, e.g. st.connection("history", type="sql").engine,
    or a URL; None keeps the JSON folder.
    """
    return open_store(history_dir if database is None else database, owner_for(history_dir, folder))


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
