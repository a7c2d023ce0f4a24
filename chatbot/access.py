"""Whose history a visitor sees: each signed-in user has a folder of their own."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

USERS_DIR = "users"


@dataclass(frozen=True)
class Access:
    """The history folder a visitor may use, or why they must sign in first (folder is None)."""

    folder: Path | None
    signed_in: bool = False
    login_available: bool = False
    problem: str | None = None


def user_folder(history_dir: Path, user: Mapping[str, object]) -> Path:
    """A folder named by a hash of the identity provider and the user's stable subject id.

    Hashing keeps e-mail addresses out of paths and makes a folder name unforgeable from input.
    """
    subject = user.get("sub") or user.get("email")
    identity = f"{user.get('iss') or ''}|{subject}"
    return history_dir / USERS_DIR / hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def resolve_access(
    history_dir: Path, user: Mapping[str, object], *, login_configured: bool, require_login: bool
) -> Access:
    """Signed in: the user's own folder. Otherwise the shared folder, unless login is required."""
    if user.get("is_logged_in") and (user.get("sub") or user.get("email")):
        return Access(user_folder(history_dir, user), signed_in=True, login_available=True)
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
