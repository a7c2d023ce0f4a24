"""The History page: every saved conversation, searchable; open, rename, export, delete, import."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import streamlit as st

from app_pages.safe_text import plain
from app_pages.session import HISTORY_PAGE, session
from app_pages.shared import (
    App,
    delete,
    export_buttons,
    guarded,
    notify,
    open_conversation,
    rename,
    restore,
)
from history.errors import ConversationNotFound, HistoryError
from history.listing import conversations_table
from history.models import ConversationSummary
from history.search import search_table
from history.transfer.export import all_conversations_filename, all_conversations_zip
from history.transfer.import_formats import ImportFailed
from history.transfer.importers import MAX_IMPORT_BYTES, import_file

logger = logging.getLogger(__name__)

COLUMNS = {
    "title": st.column_config.TextColumn("Title", width="large"),
    "snippet": st.column_config.TextColumn("Match", width="large"),
    "updated": st.column_config.DatetimeColumn("Updated", format="YYYY-MM-DD HH:mm"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
    "messages": st.column_config.NumberColumn("Messages"),
    "model": st.column_config.TextColumn("Model"),
}


def import_upload(app: App, upload) -> None:
    """Import an uploaded file once, showing how far it got, and say what came in and what was skipped.
    Whatever happens, even a bug, ends in a message and a cleared uploader, so a rerun never repeats it."""
    try:
        with st.status("Importing…", expanded=True) as status:
            bar = st.progress(0.0)
            report = import_file(
                app.store, upload.name, upload.getvalue(), limits=app.settings.import_limits(),
                progress=lambda done, text: bar.progress(done, text=text),
            )
            status.update(label="Imported", state="complete")
        notify(report.summary(), "success" if report.imported and not report.limit else "warning")
    except ImportFailed as error:
        notify(str(error), "error")
    except HistoryError as error:
        notify(f"{error.message} The import stopped there: import the file again once this is fixed, "
               "and what already came in is skipped.", "error")
    except Exception:  # a bug: said in words and logged, never a traceback on the page
        logger.exception("Importing %r failed unexpectedly", upload.name)
        notify(f"'{upload.name}' could not be imported: something went wrong in the app (it is in the "
               "server's log). Whatever came in before it is in the history; the file was not read again.",
               "error")
    finally:
        session().upload_key += 1  # clears the uploader
        session().table_key += 1
    st.rerun()


def render_tools(app: App) -> None:
    export_column, import_column = st.columns(2)
    export_column.download_button(
        "Download all (zip)", lambda: all_conversations_zip(app.store), all_conversations_filename(),
        mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
    )
    with import_column.popover("Import", icon=":material/upload_file:"):
        upload = st.file_uploader(
            "ChatGPT export, this app's JSON or zip, the Flask history, or an OpenAI messages list",
            type=["json", "zip"], max_upload_size=MAX_IMPORT_BYTES // 2**20,
            key=f"import_{session().upload_key}",
        )
        if upload is not None:
            import_upload(app, upload)
    render_trash(app)


@guarded
def delete_forever(app: App, summary: ConversationSummary) -> None:
    """Remove a conversation from the trash for good (the popover asked first)."""
    try:
        app.store.delete_forever(summary.id)
    except ConversationNotFound:
        notify(f"“{summary.title}” was no longer in Recently deleted: another window restored or removed it.",
               "warning")
        return
    notify(f"Deleted “{summary.title}” for good.")


def purge_old_trash(app: App) -> None:
    """Remove what was deleted longer ago than CHATBOT_TRASH_DAYS; if that fails, the trash still shows."""
    if not app.settings.trash_days:
        return
    try:
        app.store.purge_deleted(datetime.now(UTC) - timedelta(days=app.settings.trash_days))
    except HistoryError as error:
        st.warning(plain(f"Could not empty the old part of Recently deleted: {error.message}"))


def render_trash(app: App) -> None:
    """Recently deleted: restore a conversation, or delete it forever; old ones go by themselves."""
    purge_old_trash(app)
    deleted = app.store.deleted()
    if not deleted:
        return
    days = app.settings.trash_days
    with st.expander(f"Recently deleted ({len(deleted)})", icon=":material/delete:"):
        kept = (f"removed for good {days:g} days after they were deleted" if days
                else "kept until you delete them forever (CHATBOT_TRASH_DAYS = 0)")
        st.caption(plain(f"Deleted conversations are {kept}."))
        for summary in deleted:
            title_column, restore_column, forever_column = st.columns([4, 1, 1], vertical_alignment="center")
            title_column.markdown(plain(summary.title, one_line=True))
            restore_column.button(
                "Restore", key=f"restore_{summary.id}", on_click=restore, args=(app, summary.id)
            )
            with forever_column.popover("Delete forever", icon=":material/delete_forever:"):
                st.markdown("This cannot be undone: the conversation is removed from the history.")
                st.button(
                    "Delete forever", key=f"forever_{summary.id}", type="primary",
                    on_click=delete_forever, args=(app, summary),
                )


def render_actions(app: App, conversation_id: str) -> None:
    """Open, rename, export or delete the row picked while managing."""
    try:
        conversation = app.service.open(conversation_id)
    except ConversationNotFound as error:
        st.warning(plain(error.message))
        return
    except ValueError as error:
        st.error(plain(str(error)))
        return
    st.markdown(f"**{plain(conversation.title, one_line=True)}** · {len(conversation.messages)} messages")
    key = f"history_title_{conversation.id}"
    title_column, rename_column = st.columns([3, 1], vertical_alignment="bottom")
    title_column.text_input("Title", value=conversation.title, key=key, max_chars=200)
    rename_column.button("Rename", on_click=rename, args=(app, conversation.id, key), width="stretch")
    open_column, json_column, markdown_column, delete_column = st.columns(4)
    if open_column.button("Open", icon=":material/open_in_new:", type="primary", width="stretch"):
        open_conversation(conversation)
        st.rerun()
    export_buttons(app, conversation, (json_column, markdown_column), width="stretch")
    delete_column.button(
        "Delete", icon=":material/delete:", on_click=delete, args=(app, conversation), width="stretch",
        help="Moves it to Recently deleted, below, where it can be restored.",
    )


def picked_id(rows: list[int], ids: list[str]) -> str | None:
    """The id of the row the user picked, from the table as it was drawn for them: another tab may
    have added or deleted conversations since, which moves rows."""
    return ids[rows[0]] if rows and rows[0] < len(ids) else None


def render(app: App) -> None:
    st.subheader("Saved conversations")
    query_column, dates_column, manage_column = st.columns([5, 4, 2], vertical_alignment="bottom")
    query = query_column.text_input("Search", placeholder="Search every message", icon=":material/search:")
    dates = dates_column.date_input("Updated between", value=(), format="YYYY-MM-DD")
    managing = manage_column.toggle("Manage", help="Pick a row to rename, export or delete it.")
    days = (*dates, None, None)[:2]
    wanted = session().history_shown  # one more than shown says whether there are more
    if query.strip():
        table = search_table(app.store.search(query, wanted + 1, days=days))
    else:
        table = conversations_table(app.store.page(wanted + 1, days=days))
    more, table = len(table) > wanted, table.head(wanted)
    if table.empty:
        st.info(
            "Nothing matches. Change the search or the dates." if query.strip() or dates else
            "No saved conversations yet. Start chatting and they will appear here."
        )
    else:
        key = f"history_table_{session().table_key}_{query}_{dates}_{managing}"
        ids = list(table["id"])
        shown_ids = session().history_rows.get(key) or ids  # the rows as drawn when the user picked
        session().history_rows = {key: ids}
        event = st.dataframe(
            table,
            key=key,
            on_select="rerun",
            selection_mode="single-row",
            hide_index=True,
            column_order=("title", "snippet", "updated", "messages", "model", "created"),
            column_config=COLUMNS,
        )
        picked = picked_id(event.selection.rows, shown_ids)
        if managing and picked:
            render_actions(app, picked)
        elif picked:
            try:
                open_conversation(app.service.open(picked))
            except ConversationNotFound as error:
                st.warning(plain(error.message))
            else:
                st.rerun()
        else:
            st.caption("Pick a row to manage it." if managing else "Pick a row to open that conversation.")
        if more:
            st.button(
                "Show more", icon=":material/expand_more:", on_click=session().update,
                kwargs={"history_shown": wanted + HISTORY_PAGE},
                help=f"Shows the next {HISTORY_PAGE} conversations.",
            )
    render_tools(app)
