"""Small helpers that find things in Streamlit's DOM the way a user would, so tests read like steps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from weakref import WeakKeyDictionary

from google.protobuf.message import DecodeError
from playwright.sync_api import Locator, Page, WebSocket, expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

TIMEOUT_MS = 15_000  # every wait in a browser test is bounded by this
CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright cannot download its own browser here
# As root on a closed network, Chromium needs no sandbox and none of its background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-gpu",
    "--no-first-run",
]

_SOCKETS: WeakKeyDictionary[Page, WebSocket] = WeakKeyDictionary()


def follow_script_runs(page: Page) -> None:
    """Keep the page's current Streamlit websocket (a reload opens a new one) for `then_pause`."""
    page.on("websocket", lambda socket: _SOCKETS.__setitem__(page, socket))


def _ends_a_full_run(payload: str | bytes) -> bool:
    """True for the server message saying a whole script run reached its end."""
    if isinstance(payload, str):
        return False
    try:
        message = ForwardMsg.FromString(payload)
    except DecodeError:
        return False
    return (message.WhichOneof("type") == "script_finished"
            and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY)


def chat_input(page: Page) -> Locator:
    return page.locator('[data-testid="stChatInput"] textarea')


def messages(page: Page) -> Locator:
    """Every chat bubble, user and assistant, in order."""
    return page.locator('[data-testid="stChatMessage"]')


def bubble(page: Page, index: int) -> Locator:
    """The text part of one chat bubble (no avatar, no caption)."""
    return messages(page).nth(index).locator('[data-testid="stMarkdownContainer"]').first


def sidebar_button(page: Page, name: str) -> Locator:
    """A sidebar button; "Load History" and "Start Fresh" also exist in the New Session dialog."""
    return page.get_by_test_id("stSidebar").get_by_role("button", name=name)


def dialog(page: Page) -> Locator:
    return page.locator('[role="dialog"]')


def history_table(page: Page) -> Locator:
    return page.locator('[data-testid="stDataFrame"]')


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a user does."""
    box = chat_input(page)
    expect(box).to_be_editable()
    box.fill(text)
    box.press("Enter")


def expect_chat(page: Page, *texts: str) -> None:
    """The chat shows exactly these bubbles, in order, once every rerun has settled."""
    expect(messages(page)).to_have_count(len(texts))
    for index, text in enumerate(texts):
        expect(bubble(page, index)).to_have_text(text)


def expect_title(page: Page, title: str) -> None:
    """The conversation's heading shows `title`.

    After a first message it changes only in the rerun that follows the saved reply, so this also
    says the turn is over and saved: clicking or reloading earlier would cut the turn short.
    """
    expect(page.get_by_role("main").get_by_role("heading", level=3)).to_have_text(title)


def expect_idle(page: Page) -> None:
    """Wait until no script run is going on, so what is on screen is what the run left there."""
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def then_pause(page: Page, action: Callable[[], None]) -> None:
    """Do `action`, then wait until the script run it starts has finished, as a person pausing would.

    A dismissed dialog needs this: if the next click interrupts the dismissal's run, Streamlit 1.67
    keeps the closed dialog in the page and can show it again. The end of a run is read from the
    websocket, since a quick run may never show as "running" in the page.
    """
    expect_idle(page)  # so the run that ends next is the one `action` starts
    with _SOCKETS[page].expect_event("framereceived", predicate=_ends_a_full_run, timeout=TIMEOUT_MS):
        action()


def chat_about(page: Page, text: str) -> None:
    """Start a conversation with one turn answered by the echo server, and wait until it is saved."""
    send(page, text)
    expect_title(page, text)
    expect_chat(page, text, f"Echo: {text}")


def history_titles(page: Page) -> list[str]:
    """The titles in the Load History table, read from the grid's accessible table (the grid is a canvas)."""
    table = history_table(page).locator('table[role="grid"]')
    expect(table).to_be_attached()
    return table.locator('tbody [role="gridcell"][aria-colindex="1"]').all_inner_texts()


def expect_history_rows(page: Page, count: int) -> None:
    """The Load History table has `count` rows; aria-rowcount counts the header too."""
    table = history_table(page).locator('table[role="grid"]')
    expect(table).to_have_attribute("aria-rowcount", str(count + 1))


def pick_row(page: Page, index: int) -> None:
    """Tick a row's selection checkbox: the grid is a canvas, so click where the checkbox is drawn.

    Rows and the header share one height, so it is the canvas height over the aria row count; the
    checkbox column is the first, about 32 px wide.
    """
    canvas = history_table(page).get_by_test_id("data-grid-canvas")
    canvas.scroll_into_view_if_needed()
    rows = int(history_table(page).locator('table[role="grid"]').get_attribute("aria-rowcount") or 0)
    box = canvas.bounding_box()
    assert box is not None and index < rows - 1, f"no row {index} in a grid of {rows - 1} rows"
    row_height = box["height"] / rows
    page.mouse.click(box["x"] + 16, box["y"] + row_height * (index + 1.5))
