"""The History page (AppTest): search, date filter, and managing a picked conversation."""

from __future__ import annotations

from datetime import date, timedelta

from tests.apptest import button, chat, saved, send


def pick(at, row: int):
    """Select a row of the history table, as a click on its checkbox does."""
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def history_with(new_visit, *firsts: str):
    """A visit that has had one conversation per text, then opened the History page."""
    at = new_visit()
    for text in firsts:
        button(at, "Start Fresh").click().run()
        send(at, text)
    return button(at, "Load History").click().run()


def test_the_date_filter_keeps_conversations_updated_in_the_range(new_visit):
    at = history_with(new_visit, "today's question")
    today = date.today()
    at.date_input[0].set_value((today - timedelta(days=7), today + timedelta(days=1))).run()
    assert at.dataframe[0].value["title"].tolist() == ["today's question"]
    at.date_input[0].set_value((today - timedelta(days=30), today - timedelta(days=7))).run()
    assert not at.dataframe and at.info[0].value == "Nothing matches. Change the search or the dates."


def test_managing_a_row_renames_it_without_opening_it(new_visit, history_dir):
    at = history_with(new_visit, "first topic", "second topic")
    at.toggle[0].set_value(True).run()
    pick(at, 1)
    assert any(m == "**first topic** · 2 messages" for m in at.markdown.values)
    assert {"JSON", "Markdown", "Download all (zip)"} == {b.label for b in at.get("download_button")}
    title = next(t for t in at.text_input if t.label == "Title")
    title.set_value("Renamed topic")
    button(at, "Rename").click().run()
    assert sorted(at.dataframe[0].value["title"]) == ["Renamed topic", "second topic"]
    assert sorted(c["title"] for c in saved(history_dir)) == ["Renamed topic", "second topic"]
    assert at.subheader[0].value == "Saved conversations", "still on the History page"


def test_managing_a_row_deletes_it_to_recently_deleted_and_open_opens_it(new_visit, history_dir):
    at = history_with(new_visit, "keep this", "drop this")
    at.toggle[0].set_value(True).run()
    pick(at, 0)
    button(at, "Delete").click().run()
    assert at.dataframe[0].value["title"].tolist() == ["keep this"]
    assert at.main.expander[-1].label == "Recently deleted (1)"
    assert [c["title"] for c in saved(history_dir)] == ["keep this"]
    pick(at, 0)
    button(at, "Open").click().run()
    assert chat(at) == [("user", "keep this"), ("assistant", "Echo: keep this")]
