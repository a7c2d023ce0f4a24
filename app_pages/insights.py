"""The Insights page: how the bot is used and how well it answers, from the saved history.

The figures come from store.insights(), which the store's engine aggregates (history/insight_queries.py);
every message is read only for the CSV download, when it is clicked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import streamlit as st

from app_pages.safe_text import plain
from app_pages.shared import App
from history.insights import between, to_csv
from history.stores.base import HistoryStore

LABELS = {
    "conversations": "Conversations",
    "messages": "Messages",
    "latency_median_ms": "Median reply",
    "latency_p90_ms": "90th percentile reply",
    "first_token_median_ms": "Median first token",
    "total_tokens": "Tokens",
    "up": "Thumbs up",
    "down": "Thumbs down",
    "answers": "Answers",
}


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _seconds(milliseconds: float | None) -> str:
    return "–" if milliseconds is None else f"{milliseconds / 1000:.1f} s"


DATES_KEY = "insights_dates"  # the date picker's range, read before the figures it picks are asked for


def render_headline(figures: dict) -> None:
    columns = st.columns(5)
    columns[0].metric("Conversations", f"{figures['conversations']:,}", help="Started in the date range.")
    columns[1].metric("Messages", f"{figures['messages']:,}")
    columns[2].metric("Median reply time", _seconds(figures["median_latency_ms"]), help="Model answers only.")
    columns[3].metric("Thumbs up", _percent(figures["thumbs_up_share"]), help="Of the replies rated.")
    columns[4].metric("Scripted", _percent(figures["scripted_share"]), help="Answers from the bot profile.")


def chart_with_data(title: str, data: pd.DataFrame, kind: str, columns: list[str], note: str) -> None:
    """A chart, what it shows in one sentence, and its numbers a click away."""
    st.markdown(f"#### {plain(title)}")
    st.caption(plain(note))
    if data.empty:
        st.info("Nothing to show in this date range.")
        return
    shown = data[columns].rename(columns=LABELS)
    if kind == "bar":
        st.bar_chart(shown, stack=False)
    else:
        st.line_chart(shown)
    with st.expander("Numbers", icon=":material/table:"):
        st.dataframe(data)


def _picked(value: object) -> tuple[date | None, date | None]:
    """The start and end day of the picker's value: a range, one day while a range is picked, or none."""
    days = list(value) if isinstance(value, (tuple, list)) else [value] if isinstance(value, date) else []
    start, end = (*days, None, None)[:2]
    return start, end or start


def _csv(store: HistoryStore, start: date | None, end: date | None) -> bytes:
    """The messages of the range as CSV, read from the store only when the download is clicked."""
    return to_csv(between(store.insight_rows(), start, end))


def render(app: App) -> None:
    st.subheader("Insights")
    start, end = _picked(st.session_state.get(DATES_KEY))
    figures = app.store.insights(start, end)
    if start is None and figures.undated and figures.dates:  # the picker's first range leaves them out
        start, end = figures.dates
        figures = app.store.insights(start, end)
    if not figures.messages:
        st.info("No conversations yet. Insights appear once people start chatting.")
        return
    st.date_input("Dates (UTC)", value=figures.dates or (), format="YYYY-MM-DD", key=DATES_KEY)
    render_headline(figures.headline)
    per = figures.bucket  # a day, unless the dates span more days than a chart can show
    if per != "day":
        st.caption(plain(
            f"These dates span too long a time to show every day, so the charts count per {per}. "
            "Pick a shorter range to see days; a conversation dated far off may have a wrong clock."
        ))
    chart_with_data(
        f"Conversations and messages per {per}", figures.activity, "bar", ["conversations", "messages"],
        f"Conversations counted in the {per} they started; messages from users and the bot.",
    )
    times_table = figures.reply_times
    chart_with_data(
        "Reply time", times_table, "line", ["latency_median_ms", "latency_p90_ms", "first_token_median_ms"],
        f"Milliseconds per {per} for model answers: median and 90th percentile of the whole reply, "
        "and the median wait for the first token.",
    )
    chart_with_data(
        "Tokens", times_table, "bar", ["total_tokens"],
        f"Tokens per {per} that the server reported for model answers.",
    )
    chart_with_data(
        "Feedback", figures.feedback, "bar", ["up", "down"],
        f"Thumbs up and down given per {per}; the table has the share of thumbs up.",
    )
    chart_with_data(
        "Who answered", figures.sources, "bar", ["answers"],
        "The model, a scripted answer from the bot profile, or the profile's fallback.",
    )
    st.markdown("#### Most common first questions")
    st.dataframe(figures.top_questions, hide_index=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    st.download_button(
        "Download messages (CSV)", lambda: _csv(app.store, start, end), f"chat-insights-{stamp}.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore",
    )
