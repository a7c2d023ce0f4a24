"""The layers stay apart: history/ knows neither Streamlit nor chatbot/, and chatbot/ knows no Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every import in a module, wherever in the module it happens."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), [
    ("history", {"streamlit", "chatbot", "app_pages"}),
    ("chatbot", {"streamlit", "app_pages"}),
])
def test_a_lower_layer_imports_no_upper_one(package, forbidden):
    modules = sorted((REPO / package).rglob("*.py"))
    assert len(modules) > 10
    crossings = {str(path.relative_to(REPO)): sorted(imported_packages(path) & forbidden) for path in modules}
    assert {path: names for path, names in crossings.items() if names} == {}


def test_history_keeps_its_stores_and_transfers_in_their_own_packages():
    top = {path.stem for path in (REPO / "history").glob("*.py")}
    assert {"json_store", "sql_store", "store", "importers", "export"}.isdisjoint(top)
    assert (REPO / "history/stores/base.py").is_file() and (REPO / "history/transfer/importers.py").is_file()
