"""Hostile imports from issue 13: a 20 MB list of conversations, zip bombs, a large ChatGPT export.

Run: .venv/bin/python -m bench.import_bench
Each case imports into an empty JSON folder in a fresh process with the default limits, and reports the
wall time, the peak memory (max RSS) of that process and what the import said. Before the limits, the
20 MB list created 299,591 conversations in 376 s and a 199 MB ChatGPT export took 38 s and 1.5 GB.
Target: every case ends within seconds, well under 1 GB.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = "2026-01-02T03:04:05.000Z"
_CHILD = """
import sys, time
from pathlib import Path
Path("/proc/self/clear_refs").write_text("5")  # forget the peak inherited from the parent (Linux)
from history.transfer.importers import ImportFailed, import_file
from history.stores.json_store import JsonHistoryStore
data = Path(sys.argv[1]).read_bytes()
started = time.monotonic()
try:
    said = import_file(JsonHistoryStore(sys.argv[2]), Path(sys.argv[1]).name, data).summary()
except ImportFailed as error:
    said = str(error)
seconds = time.monotonic() - started
status = Path("/proc/self/status").read_text().split()
peak = int(status[status.index("VmHWM:") + 1]) / 1024
print(f"{seconds:.1f} s | {peak:.0f} MB | {said[:150]}")
"""


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def flood() -> bytes:
    """Small conversations of this app's format until just under the 20 MB upload limit."""
    items, size, number = [], 2, 0
    while size < 20 * 2**20 - 200:
        item = json.dumps({"schema_version": 1, "id": f"c{number:07d}", "created_at": STAMP,
                           "messages": [{"role": "user", "content": "q", "created_at": STAMP}]})
        items.append(item)
        size += len(item) + 2
        number += 1
    return ("[" + ", ".join(items) + "]").encode()


def chatgpt(megabytes: int) -> bytes:
    """A ChatGPT conversations.json of one-message conversations, about `megabytes` large."""
    items, size, number = [], 2, 0
    while size < megabytes * 2**20:
        item = json.dumps({"id": f"g-{number}", "title": f"Chat {number}", "create_time": 1.7e9, "mapping": {
            "n": {"id": "n", "parent": None, "children": [], "message": {"author": {"role": "user"},
                  "content": {"content_type": "text", "parts": [f"hello {number}"]}}}}, "current_node": "n"})
        items.append(item)
        size += len(item) + 2
        number += 1
    return ("[" + ", ".join(items) + "]").encode()


def bomb() -> bytes:
    tiny = b'{"id": "c", "created_at": "x", "messages": [{"role": "user", "content": "q"}]}'
    return zipped("c.json", b"[" + b", ".join([tiny] * 3_000_000) + b"]")


CASES = {  # made one at a time, so the parent stays small
    "flood.json (20 MB list)": flood,
    "bomb.zip (3 million conversations)": bomb,
    "export.zip (199 MB conversations.json)": lambda: zipped("conversations.json", chatgpt(199)),
    "export.zip (45 MB conversations.json)": lambda: zipped("conversations.json", chatgpt(45)),
}


def run(label: str, data: bytes, folder: Path) -> None:
    upload = folder / ("upload.zip" if label.split()[0].endswith(".zip") else "upload.json")
    upload.write_bytes(data)
    command = [sys.executable, "-c", _CHILD, str(upload), str(folder / "history")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    files = len(list((folder / "history").glob("*.json"))) if (folder / "history").exists() else 0
    print(f"| {label} | {len(data) / 2**20:.2f} MB | {files:,} | {done.stdout.strip()} |")


def main() -> None:
    print("| Upload | Size | Files saved | Import time | Peak RSS of the process | What the import said |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, make in CASES.items():
        with tempfile.TemporaryDirectory() as folder:
            run(label, make(), Path(folder))


if __name__ == "__main__":
    main()
