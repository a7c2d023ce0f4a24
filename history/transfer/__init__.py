"""Conversations in and out of a store: import formats, export, and copying between stores."""
