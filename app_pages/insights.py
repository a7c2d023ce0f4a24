"""The Insights page: how the bot is used and how well it answers, from the saved history."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from app_pages.safe_text import plain
from app_pages.shared import App
from history.insights import (
    answer_sources,
    between,
    bucket_size,
    daily_activity,
    feedback_by_day,
    headline,
    reply_times,
    to_csv,
    top_first_questions,
)

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


def render_headline(frame: pd.DataFrame) -> None:
    figures = headline(frame)
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


def render(app: App) -> None:
    st.subheader("Insights")
    rows = app.store.insight_rows()
    if rows.empty:
        st.info("No conversations yet. Insights appear once people start chatting.")
        return
    times = rows["created_at"].dropna()
    first, last = times.min().date(), times.max().date()
    picked = st.date_input("Dates (UTC)", value=(first, last), format="YYYY-MM-DD")
    start, end = (*picked, None, None)[:2]
    frame = between(rows, start, end or start)
    render_headline(frame)
    per = bucket_size(frame)  # a day, unless the dates span more days than a chart can show
    if per != "day":
        st.caption(plain(
            f"These dates span too long a time to show every day, so the charts count per {per}. "
            "Pick a shorter range to see days; a conversation dated far off may have a wrong clock."
        ))
    chart_with_data(
        f"Conversations and messages per {per}", daily_activity(frame), "bar", ["conversations", "messages"],
        f"Conversations counted in the {per} they started; messages from users and the bot.",
    )
    times_table = reply_times(frame)
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
        "Feedback", feedback_by_day(frame), "bar", ["up", "down"],
        f"Thumbs up and down given per {per}; the table has the share of thumbs up.",
    )
    chart_with_data(
        "Who answered", answer_sources(frame), "bar", ["answers"],
        "The model, a scripted answer from the bot profile, or the profile's fallback.",
    )
    st.markdown("#### Most common first questions")
    st.dataframe(top_first_questions(frame), hide_index=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    st.download_button(
        "Download messages (CSV)", lambda: to_csv(frame), f"chat-insights-{stamp}.csv",
        mime="text/csv", icon=":material/download:", on_click="ignore",
    )
