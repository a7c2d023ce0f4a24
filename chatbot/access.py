"""Whose history a visitor sees: each signed-in user has a folder of their own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

USERS_DIR = "users"
NO_SUBJECT = (
    "Your sign-in did not say who you are: the identity provider sent no subject (\"sub\"), so the app "
    "cannot keep your history apart from anyone else's. Sign out and sign in again; if this keeps "
    "happening, the app's owner should check the [auth] settings of the identity provider."
)


@dataclass(frozen=True)
class Access:
    """The history folder a visitor may use, or why they must sign in first (folder is None)."""

    folder: Path | None
    signed_in: bool = False
    login_available: bool = False
    problem: str | None = None
    legacy_folder: Path | None = None  # where an earlier version kept this user's history


def _issuer(user: Mapping[str, object]) -> str:
    issuer = user.get("iss")
    return issuer if isinstance(issuer, str) else ""


def _subject(user: Mapping[str, object]) -> str | None:
    """The provider's stable id for the user; an e-mail address is not one (it can change hands)."""
    subject = user.get("sub")
    return subject if isinstance(subject, str) and subject else None


def _folder(history_dir: Path, identity: str) -> Path:
    return history_dir / USERS_DIR / hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def user_folder(history_dir: Path, user: Mapping[str, object]) -> Path:
    """A folder named by a hash of the identity provider and the user's stable subject id.

    The pair is hashed as a JSON array, so no two (issuer, subject) pairs share a folder; hashing
    keeps ids out of paths and makes a folder name unforgeable from input.
    """
    identity = json.dumps([_issuer(user), _subject(user)], ensure_ascii=False)
    return _folder(history_dir, identity)


def legacy_folder(history_dir: Path, user: Mapping[str, object]) -> Path | None:
    """The folder earlier versions used, a hash of "issuer|subject", when it can only be this user's.

    That text is ambiguous once the issuer holds a "|" ("a|b" + "c" and "a" + "b|c" join alike); an
    issuer without one fixes where the subject starts, so the folder is this user's alone.
    """
    if "|" in _issuer(user):
        return None
    return _folder(history_dir, f"{_issuer(user)}|{_subject(user)}")


def resolve_access(
    history_dir: Path, user: Mapping[str, object], *, login_configured: bool, require_login: bool
) -> Access:
    """Signed in: the user's own folder (none, with a problem, without a subject). Otherwise the
    shared folder, unless login is required."""
    if user.get("is_logged_in") and _subject(user) is None:
        return Access(None, signed_in=True, login_available=True, problem=NO_SUBJECT)
    if user.get("is_logged_in"):
        return Access(
            user_folder(history_dir, user), signed_in=True, login_available=True,
            legacy_folder=legacy_folder(history_dir, user),
        )
    if require_login and not login_configured:
        return Access(
            None,
            problem=(
                "CHATBOT_REQUIRE_LOGIN is on, but login is not configured: add an [auth] section "
                "to .streamlit/secrets.toml (see the README's Private history section)."
            ),
        )
    if require_login:
        return Access(None, login_available=True)
    return Access(history_dir, login_available=login_configured)
