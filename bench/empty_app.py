"""Floor for bench.rerun_bench: what a rerun costs in Streamlit itself, with a script that does nothing."""

import streamlit as st

st.caption("Answering: nothing (empty script)")  # the same ready-text the real app shows
