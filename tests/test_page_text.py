"""Every page shows stored or external text through app_pages/safe_text.py, so a new page cannot forget.

Streamlit renders Markdown (images included) in st.markdown and st.write, in captions, headings and alerts,
and in the labels of buttons, expanders and popovers. Read from the source: the text given to any of
them is a literal, or comes from a safe_text function, or is a number.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((REPO / "app_pages").glob("*.py")), REPO / "streamlit_app.py"]
SAFE_TEXT = REPO / "app_pages" / "safe_text.py"

SHOWS_MARKDOWN = {
    "markdown", "write", "caption", "title", "header", "subheader", "info", "warning", "error", "success",
    "toast", "button", "expander", "popover", "form_submit_button", "download_button", "link_button",
    "dialog", "tabs", "exception",
}
SAFE_FUNCTIONS = {"markdown", "plain", "code", "note"}
NUMBERS = {"len", "min", "max"}


def safe(node: ast.expr) -> bool:
    """True when the expression can only be a literal, safe_text's output, or a number."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(part, ast.Constant) or safe_value(part) for part in node.values)
    if isinstance(node, ast.IfExp):
        return safe(node.body) and safe(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return safe(node.left) and safe(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in SAFE_FUNCTIONS
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
        pieces = node.args[0] if node.args else None
        return (safe(node.func.value) and isinstance(pieces, ast.GeneratorExp | ast.ListComp)
                and safe(pieces.elt))
    if isinstance(node, ast.List | ast.Tuple):  # st.tabs(["A", "B"])
        return all(safe(item) for item in node.elts)
    return False


def safe_value(part: ast.FormattedValue) -> bool:
    """An f-string's {value}: safe_text's output, a count, or formatted as a number ({n:d}, {n:,})."""
    value = part.value
    called = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None
    if called in SAFE_FUNCTIONS | NUMBERS:
        return True
    spec = part.format_spec
    if isinstance(spec, ast.JoinedStr) and len(spec.values) == 1 and isinstance(spec.values[0], ast.Constant):
        return str(spec.values[0].value)[-1:] in {"d", "f", "%", ",", "n", "e", "g"}
    return False


def shown_text(call: ast.Call) -> ast.expr | None:
    """The argument Streamlit renders: the first positional one, or label= / body=."""
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in {"label", "body"}), None)


def unsafe_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        where = f"{path.name}:{call.lineno}: {ast.unparse(call)[:100]}"
        if isinstance(call.func, ast.Attribute) and call.func.attr == "write_stream":
            found.append(f"{where} (use safe_text.stream)")
        elif isinstance(call.func, ast.Attribute) and call.func.attr in SHOWS_MARKDOWN:
            text = shown_text(call)
            if text is not None and not safe(text):
                found.append(where)
        elif isinstance(call.func, ast.Subscript) and call.args and not safe(call.args[0]):
            found.append(where)  # NOTICES[kind](text)
    return found


@pytest.mark.parametrize("path", [p for p in SOURCES if p != SAFE_TEXT], ids=lambda p: p.name)
def test_pages_show_stored_text_only_through_safe_text(path):
    assert unsafe_calls(path) == [], (
        "Show stored or external text through app_pages.safe_text: markdown() for message bodies, "
        "plain() for titles, names, notices and errors, code() for a name in a code span."
    )


def test_the_check_catches_text_shown_raw(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        "st.markdown(message['content'])\n"
        "st.caption(f'**{title}**')\n"
        "place.write_stream(chunks)\n"
        "NOTICES[kind](text)\n"
        "st.button(label)\n"
        "st.subheader(plain(title))\n"
        "st.caption(f'Version {number:d} of {len(versions)}')\n",
        encoding="utf-8",
    )
    assert [line.split(":")[1] for line in unsafe_calls(page)] == ["1", "2", "3", "4", "5"]
