"""Each history store the contract tests run against: JSON folder, SQLite file, PostgreSQL server, memory.

PostgreSQL comes from CHATBOT_TEST_POSTGRES_URL, which `make test` sets to a throwaway server
(`bash .ci/postgres.sh run pytest …` does the same by hand). Unset or unreachable fails the tests,
never skips them: a run must not pass without having tested PostgreSQL. Each test gets a schema of
its own in that database, dropped afterwards.
"""

from __future__ import annotations

import functools
import os
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from history.stores import sql_schema
from history.stores.backend import open_store
from history.stores.base import HistoryStore
from history.stores.memory_store import MemoryHistoryStore

POSTGRES_ENV = "CHATBOT_TEST_POSTGRES_URL"
BACKENDS = ["json", "sqlite", "postgresql"]  # what servers and processes can share
STORES = [*BACKENDS, "memory"]  # every HistoryStore: the contract suite runs on each
SQL_BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Backend:
    """One empty history: a folder path or a database URL, opened as any owner's store."""

    name: str
    target: str
    memory: dict[str, MemoryHistoryStore] = field(default_factory=dict, compare=False)  # by owner

    def store(self, owner: str = "") -> HistoryStore:
        if self.name == "memory":
            return self.memory.setdefault(owner, MemoryHistoryStore())
        return open_store(self.target, owner)


@functools.cache
def _reachable(url: str) -> str | None:
    """None if the server answers, else why not (checked once per run)."""
    engine = sa.create_engine(sql_schema.normalize_url(url), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        return str(error).splitlines()[0]
    finally:
        engine.dispose()
    return None


def postgres_url() -> str:
    """The test server's URL; the test fails, saying how to get one, when there is none."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.fail(
            f"{POSTGRES_ENV} is not set: run `make test`, or `bash .ci/postgres.sh run "
            ".venv/bin/python -m pytest …`, which start a throwaway PostgreSQL for the tests"
        )
    problem = _reachable(url)
    if problem:
        pytest.fail(f"{POSTGRES_ENV} is set but the server cannot be reached: {problem}")
    return sql_schema.normalize_url(url)


def with_search_path(url: str, schema: str) -> str:
    """The URL with libpq's `options` making `schema` the only schema its connections see."""
    parsed = sa.make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _forget_engine(url: str) -> None:
    engine = sql_schema._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def postgres_target() -> Iterator[str]:
    """A URL whose connections use a fresh schema, dropped (with everything in it) afterwards."""
    base = postgres_url()
    schema = f"test_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, pool_pre_ping=True)  # the fault tests restart the server
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(base, schema)
    try:
        yield url
    finally:
        _forget_engine(url)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def sqlite_target(tmp_path: Path) -> str:
    return f"sqlite:///{urllib.parse.quote(str(tmp_path / 'history.db'))}"


@pytest.fixture
def make_backend(request, tmp_path) -> Iterator:
    """backend(name) -> Backend, each one empty; engines made for it are closed afterwards."""
    made: list[str] = []

    def make(name: str) -> Backend:
        if name == "json":
            return Backend(name, str(tmp_path / f"history-{len(made)}"))
        if name == "memory":
            return Backend(name, "memory")
        if name == "sqlite":
            folder = tmp_path / f"sqlite-{len(made)}"
            folder.mkdir()
            made.append(sqlite_target(folder))
            return Backend(name, made[-1])
        return Backend(name, request.getfixturevalue("postgres_target"))

    yield make
    for url in made:
        _forget_engine(url)


@pytest.fixture(params=BACKENDS)
def backend(request, make_backend) -> Backend:
    return make_backend(request.param)


@pytest.fixture(params=STORES)
def any_backend(request, make_backend) -> Backend:
    return make_backend(request.param)


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request, make_backend) -> Backend:
    return make_backend(request.param)
