"""Damaged stores and hostile ids: reported by name, never overwritten or followed, the rest keeps working."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from history.models import Conversation, InvalidConversation, is_valid_id, make_message
from history.stores.base import ConversationNotFound, UnreadableFile
from history.stores.json_store import MAX_FILE_BYTES, JsonHistoryStore

HUGE_BYTES = 50 * 2**20


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "history"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder next to the store that nothing may reach into."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture
def store(root) -> JsonHistoryStore:
    store = JsonHistoryStore(root)
    store.create(Conversation(id="good", messages=[make_message("user", "before")]))
    return store


def conversation_bytes(path: Path, **changes: object) -> bytes:
    """A valid file for the id `path` names, with some keys replaced."""
    data = Conversation(id=path.stem, messages=[make_message("user", "hello")]).to_dict()
    return json.dumps({**data, **changes}, ensure_ascii=False).encode("utf-8")


def write_huge(path: Path, outside: Path) -> None:
    """Valid conversation JSON of 50 MB: refused for its size alone."""
    head, tail = conversation_bytes(path, messages=[{"role": "user", "content": "@"}]).split(b"@")
    with open(path, "wb") as handle:
        handle.write(head)
        handle.write(b"x" * (HUGE_BYTES - len(head) - len(tail)))
        handle.write(tail)


def write_just_over_limit(path: Path, outside: Path) -> None:
    """One byte over the cap (sparse, so it costs no disk): the limit is exact."""
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)


def link_outside(path: Path, outside: Path) -> None:
    """A link to a valid conversation of the same id outside the folder: it must not appear."""
    target = outside / path.name
    target.write_bytes(conversation_bytes(path))
    path.symlink_to(target)


def writer(make: Callable[[Path], bytes]) -> Callable[[Path, Path], None]:
    return lambda path, outside: path.write_bytes(make(path))


# kind (also the conversation id) -> (how to damage <kind>.json, words its reported reason contains)
DAMAGE: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "truncated": (writer(lambda p: conversation_bytes(p)[:-25]), "not valid JSON"),
    "messages_not_list": (
        writer(lambda p: conversation_bytes(p, messages="hi")),
        "'messages' must be a list",
    ),
    "message_without_content": (
        writer(lambda p: conversation_bytes(p, messages=[{"role": "user"}])),
        "message 1 has no text 'content'",
    ),
    "content_number": (
        writer(lambda p: conversation_bytes(p, messages=[{"role": "user", "content": 42}])),
        "message 1 has no text 'content'",
    ),
    "title_list": (writer(lambda p: conversation_bytes(p, title=["a"])), "'title' must be a string"),
    "not_an_object": (writer(lambda p: b"[1, 2]"), "expected a JSON object"),
    "wrong_id": (writer(lambda p: conversation_bytes(p, id="other")), "does not match the file name"),
    "future_version": (writer(lambda p: conversation_bytes(p, schema_version=99)), "upgrade the app"),
    "not_utf8": (writer(lambda p: conversation_bytes(p, title="é").decode().encode("latin-1")), "not UTF-8"),
    "empty": (writer(lambda p: b""), "the file is empty"),
    "blank": (writer(lambda p: b" \n\t"), "the file is empty"),
    "deeply_nested": (writer(lambda p: b"[" * 100_000 + b"]" * 100_000), "nests JSON too deeply"),
    "huge": (write_huge, "larger than 20 MB"),
    "just_over_limit": (write_just_over_limit, "larger than 20 MB"),
    "symlink": (link_outside, "symbolic link"),
    "directory": (lambda path, outside: path.mkdir(), "not a regular file"),
    "fifo": (lambda path, outside: os.mkfifo(path), "not a regular file"),
}


def entry_state(path: Path) -> tuple:
    """What must not change: content (as a hash), kind, link target and mtime, never following links."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path), info.st_mtime_ns)
    if stat.S_ISREG(info.st_mode):
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), info.st_size, info.st_mtime_ns)
    return (stat.S_IFMT(info.st_mode), info.st_mtime_ns)


def state(*folders: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple]:
    """Every entry under the folders except the app's own bookkeeping (locks, index) and `skip`."""
    found = {}
    for folder in folders:
        for path in folder.rglob("*"):
            relative = path.relative_to(folder)
            if relative.parts[0] in {".locks", ".index", *skip}:
                continue
            found[str(path)] = entry_state(path)
    return found


def open_fds() -> int:
    """Open descriptors of this process, to catch one leaked on a refused file (Linux only)."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def assert_every_operation_refused(store: JsonHistoryStore, conversation_id: str, name: str) -> None:
    """Reads say what is wrong and what to do; writes refuse instead of replacing the file."""
    with pytest.raises(InvalidConversation, match=f"'{name}'.*left untouched; fix or move"):
        store.get(conversation_id)
    with pytest.raises(InvalidConversation, match=f"'{name}'"):
        store.append(conversation_id, make_message("user", "overwrite?"))
    with pytest.raises(InvalidConversation, match=f"'{name}'"):
        store.update(conversation_id, title="overwrite?")
    with pytest.raises(InvalidConversation, match=f"'{name}'"):
        store.delete(conversation_id)
    with pytest.raises(FileExistsError):
        store.create(Conversation(id=conversation_id))
    with pytest.raises(FileExistsError):
        store.restore(conversation_id)
    assert store.exists(conversation_id)  # the name stays taken


def plant(root: Path, outside: Path, kind: str) -> str:
    """Damage <kind>.json, and trash a good copy of it that restore() must not put in its place."""
    name = f"{kind}.json"
    DAMAGE[kind][0](root / name, outside)
    trashed = root / ".trash" / name
    trashed.parent.mkdir(exist_ok=True)
    trashed.write_bytes(conversation_bytes(trashed))
    return name


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_reported_left_alone_and_the_rest_works(root, outside, store, kind):
    name, reason = plant(root, outside, kind), DAMAGE[kind][1]
    before, fds = state(root, outside, skip=frozenset({"good.json"})), open_fds()

    assert [s.id for s in store.list()] == ["good"]
    [problem] = store.unreadable()
    assert problem.name == name and reason in problem.reason, problem
    assert problem.message.startswith(f"Could not read '{name}': {problem.reason}.")
    assert "fix or move the file" in problem.message

    assert_every_operation_refused(store, kind, name)
    assert state(root, outside, skip=frozenset({"good.json"})) == before
    assert open_fds() == fds

    assert store.append("good", make_message("user", "after")).messages[-1]["content"] == "after"
    assert [m["content"] for m in store.get("good").messages] == ["before", "after"]
    assert [(s.id, s.message_count) for s in store.list()] == [("good", 2)]
    assert store.unreadable() == [problem]
    assert state(root, outside, skip=frozenset({"good.json"})) == before
    assert not [p.name for p in root.iterdir() if p.name.endswith(".tmp")]


def test_a_symlinked_conversation_outside_is_never_opened(root, outside, store):
    """Access time proves the target was not read; its content would be a valid conversation."""
    plant(root, outside, "symlink")
    target, control = outside / "symlink.json", outside / "control.json"
    control.write_bytes(target.read_bytes())
    for path in (target, control):  # relatime updates atime on a read only if it is older than mtime
        info = path.stat()
        os.utime(path, ns=(info.st_mtime_ns - 3600 * 10**9, info.st_mtime_ns))
    control.read_bytes()
    if control.stat().st_atime_ns == control.stat().st_mtime_ns - 3600 * 10**9:
        pytest.skip("this file system does not record access times")
    atime = target.stat().st_atime_ns

    assert [s.id for s in store.list()] == ["good"]
    assert_every_operation_refused(store, "symlink", "symlink.json")
    assert target.stat().st_atime_ns == atime


def test_a_huge_file_is_refused_without_reading_it(root, outside, store):
    write_huge(root / "huge.json", outside)
    tracemalloc.start()
    try:
        store.list()
        with pytest.raises(InvalidConversation, match="larger than 20 MB"):
            store.get("huge")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes allocated to refuse a {HUGE_BYTES}-byte file"


# Identifiers from any input (URL, form, file name) never reach the file system unchecked.

BAD_IDS = [
    "../x",
    "..",
    ".",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "a\x00b",
    "CON",
    "nul",
    "COM1",
    "LPT9",
    "con",
    "Com1",
    ".hidden",
    "a.json",
    "",
    " ",
    "x\n",
    "é",
    "a" * 200,
    "a" * 101,
    None,
    42,
    b"abc",
    ["a"],
    Path("a"),
]


def tree(folder: Path) -> list[str]:
    """Every path under the folder, to prove nothing was created anywhere."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("folder_exists", [False, True], ids=["no-folder", "folder"])
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_an_invalid_id_is_refused_before_touching_the_file_system(tmp_path, root, bad, folder_exists):
    store = JsonHistoryStore(root)
    if folder_exists:
        store.create(Conversation(id="good"))
        (root / ".trash").mkdir()
    before = tree(tmp_path)

    assert not is_valid_id(bad) and not store.exists(bad)
    for attempt in (
        lambda: store.path_for(bad),
        lambda: store.get(bad),
        lambda: store.append(bad, make_message("user", "x")),
        lambda: store.update(bad, title="x"),
        lambda: store.delete(bad),
        lambda: store.restore(bad),
        lambda: store.create(Conversation(id=bad)),
    ):
        with pytest.raises(ConversationNotFound):
            attempt()
    assert tree(tmp_path) == before


def test_the_longest_valid_id_works(store):
    longest = "a" * 100
    store.create(Conversation(id=longest))
    assert store.get(longest).id == longest and store.exists(longest)


def test_unreadable_file_message_names_the_file_and_what_to_do():
    message = UnreadableFile("x.json", "the file is empty").message
    assert message == (
        "Could not read 'x.json': the file is empty. It was left untouched; fix or move the file and reload."
    )
