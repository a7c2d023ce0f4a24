"""Copy every conversation, and the trash, from one history store to another: a JSON folder or a database.

    python -m history.copy_store --from data/history --to postgresql+psycopg://user:pw@host/db
    python -m history.copy_store --from sqlite:///history.db --to restored-history

Every owner is copied: the shared history and each signed-in user's (users/<hash>/ folders, or the
database's owner column). Nothing is written if an id is already at the destination, unless
--skip-existing, which leaves those alone. Exit status: 0 when everything was copied, 1 when some
conversation could not be read or written (each is named), 2 when the copy was refused or a store
could not be reached at all (its message says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from history.errors import HistoryError
from history.models import Conversation, InvalidConversation
from history.stores.backend import open_store, store_owners
from history.stores.base import ConversationNotFound, HistoryStore
from history.stores.legacy import COPY_ID, continuation_of


@dataclass
class OwnerPlan:
    """What to copy for one owner, decided before anything is written."""

    owner: str
    live: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)  # the Flask file: copied as the app continues it
    trash: list[str] = field(default_factory=list)  # most recently deleted first, as deleted() lists
    existing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    conversations: int = 0
    messages: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _in_trash(store: HistoryStore, conversation_id: str) -> bool:
    try:
        store.get_deleted(conversation_id)
    except ConversationNotFound:
        return False
    except InvalidConversation:
        return True
    return True


def plan_owner(source: HistoryStore, destination: HistoryStore, owner: str) -> OwnerPlan:
    plan = OwnerPlan(owner)
    for summary in source.list():
        (plan.legacy if summary.read_only else plan.live).append(summary.id)
    plan.trash = [summary.id for summary in source.deleted()]
    plan.unreadable = [(problem.name, problem.reason) for problem in source.unreadable()]
    plan.existing = [taken for taken in plan.live if destination.exists(taken)]
    plan.existing += [legacy for legacy in plan.legacy if destination.exists(COPY_ID)]  # its copy's id
    for conversation_id in plan.trash:
        if destination.exists(conversation_id) or _in_trash(destination, conversation_id):
            plan.existing.append(f"{conversation_id} (deleted)")
    return plan


def _copy_one(label: str, report: Report, read: Callable[[], Conversation], write) -> Conversation | None:
    """Read and write one conversation; a failure is reported by name and the copy goes on."""
    try:
        conversation = read()
        write(conversation)
    except (HistoryError, ValueError, TypeError) as error:  # gone, invalid, exists, too big, disk full
        report.failed.append((label, str(error) or type(error).__name__))
        return None
    return conversation


def copy_owner(source: HistoryStore, destination: HistoryStore, plan: OwnerPlan, report: Report) -> None:
    """The trash first, oldest deletion first (so its order is kept), then the live conversations."""
    taken = set(plan.existing)

    def trash(conversation: Conversation) -> None:
        destination.create(conversation)
        destination.delete(conversation.id)

    def read_live(conversation_id: str) -> Conversation:
        conversation = source.get(conversation_id)
        return continuation_of(conversation) if conversation_id in plan.legacy else conversation

    for conversation_id in reversed(plan.trash):
        label = f"{conversation_id} (deleted)"
        if label in taken:
            report.skipped += 1
        elif _copy_one(label, report, partial(source.get_deleted, conversation_id), trash):
            report.deleted += 1
    for conversation_id in plan.live + plan.legacy:
        if conversation_id in taken:
            report.skipped += 1
            continue
        copied = _copy_one(conversation_id, report, partial(read_live, conversation_id), destination.create)
        if copied is not None:
            report.conversations += 1
            report.messages += len(copied.messages)


def _label(owner: str) -> str:
    return "shared history" if owner == "" else owner


def copy_store(source: str, destination: str, *, skip_existing: bool = False, out=None) -> int:
    """Copy everything; returns the exit status (see the module's docstring). Reports go to `out`."""
    out = out or sys.stdout
    if source == destination:
        print("copy_store: --from and --to are the same store", file=out)
        return 2
    plans = [
        plan_owner(open_store(source, owner), open_store(destination, owner), owner)
        for owner in store_owners(source)
    ]
    clashes = [(plan.owner, conversation_id) for plan in plans for conversation_id in plan.existing]
    if clashes and not skip_existing:
        print(
            f"copy_store: refused, nothing written: {len(clashes)} id(s) already at the destination "
            "(--skip-existing copies the rest):",
            file=out,
        )
        for owner, conversation_id in clashes:
            print(f"  {_label(owner)}: {conversation_id}", file=out)
        return 2
    total, unreadable = Report(), 0
    for plan in plans:
        report = Report()
        copy_owner(open_store(source, plan.owner), open_store(destination, plan.owner), plan, report)
        _print_report(plan, report, out)
        unreadable += len(plan.unreadable)
        for name in ("conversations", "messages", "deleted", "skipped"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.failed += report.failed
    print(
        f"total: {total.conversations} conversations ({total.messages} messages), {total.deleted} deleted, "
        f"{total.skipped} skipped, {unreadable} unreadable, {len(total.failed)} failed",
        file=out,
    )
    return 1 if unreadable or total.failed else 0


def _print_report(plan: OwnerPlan, report: Report, out) -> None:
    print(
        f"{_label(plan.owner)}: copied {report.conversations} conversations ({report.messages} messages) "
        f"and {report.deleted} deleted; skipped {report.skipped} already at the destination; "
        f"{len(plan.unreadable)} unreadable, {len(report.failed)} failed",
        file=out,
    )
    for name, reason in plan.unreadable:
        print(f"  not copied, unreadable: {name}: {reason}", file=out)
    for name, reason in report.failed:
        print(f"  not copied: {name}: {reason}", file=out)
    for conversation_id in plan.legacy:
        print(f"  {conversation_id}: the Flask history, copied as the app continues it ({COPY_ID})", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m history.copy_store",
        description="Copy every conversation and the trash between history stores: a JSON folder "
        "or a database URL (postgresql+psycopg://..., sqlite:///file.db).",
    )
    parser.add_argument("--from", dest="source", required=True, help="JSON history folder or database URL")
    parser.add_argument("--to", dest="destination", required=True, help="JSON history folder or database URL")
    parser.add_argument("--skip-existing", action="store_true", help="leave ids already at the destination")
    args = parser.parse_args(argv)
    try:
        return copy_store(args.source, args.destination, skip_existing=args.skip_existing)
    except HistoryError as error:  # a store that cannot be listed or opened at all
        print(f"copy_store: stopped: {error.message}", file=sys.stdout)
        return 2


if __name__ == "__main__":
    sys.exit(main())
