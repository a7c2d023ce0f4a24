"""Baseline for bench.rerun_bench: a chat page that renders every message, with no window."""

from __future__ import annotations

import os

import streamlit as st

from history.stores.json_store import JsonHistoryStore


@st.cache_resource
def get_store(root: str) -> JsonHistoryStore:
    return JsonHistoryStore(root)


store = get_store(os.environ["CHATBOT_HISTORY_DIR"])
if "conversation" not in st.session_state:
    st.session_state.conversation = store.get(store.latest().id)
st.subheader(st.session_state.conversation.title)
for message in st.session_state.conversation.messages:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
st.caption("Answering: every message rendered")  # the same ready-text the real app shows
