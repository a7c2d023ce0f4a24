"""CSV cells that a spreadsheet opens as text: a cell starting like a formula gets a leading quote.

Excel, LibreOffice and Google Sheets run a cell that starts with = + - @ (and, after trimming, a tab or
carriage return, or the full-width forms of those signs) as a formula, which can fetch addresses or run
commands. OWASP's advice is to prefix such text with a single quote; numbers are left as they are.
"""

from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def safe_cell(text: str) -> str:
    """The text, with a quote in front if a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _safe_column(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        if pd.api.types.is_string_dtype(categories.dtype) or categories.dtype == object:
            return column.cat.rename_categories([safe_cell(str(name)) for name in categories])
        return column
    if pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        return column.map(lambda value: safe_cell(value) if isinstance(value, str) else value)
    return column  # numbers, booleans and times are never formulas


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame whose text cells are all safe to open in a spreadsheet."""
    return frame.apply(_safe_column)
