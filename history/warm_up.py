"""Fill the search and insights caches in the background when a server opens a history.

Both read every conversation once (seconds at 10,000); doing it as the server starts means the first
search or Insights page finds them ready instead of waiting.
"""

from __future__ import annotations

import logging
import threading

from history.errors import HistoryError
from history.insights_cache import insight_rows
from history.search import warm_up as warm_up_search
from history.stores.base import HistoryStore

log = logging.getLogger(__name__)


def warm_caches(store: HistoryStore) -> None:
    """Read everything once for search and insights; a failure is logged, the pages then read on use."""
    try:
        warm_up_search(store)
        insight_rows(store)
    except HistoryError as error:  # the history is unavailable now: the pages will say so on use
        log.warning("Could not fill the search and insights caches in advance: %s", error.message)
    except Exception:  # a background thread has no one to report to but the log
        log.exception("Could not fill the search and insights caches in advance")


def start_warm_up(store: HistoryStore) -> threading.Thread:
    thread = threading.Thread(target=warm_caches, args=(store,), name="history-warm-up", daemon=True)
    thread.start()
    return thread
