"""Credentials inside OPENAI_BASE_URL never reach the page: it shows as scheme, host, port and path only."""

from __future__ import annotations

import logging
import socket

import pytest

from chatbot.settings import shown_url
from tests.apptest import go_to, send, visit
from tests.apptest import shown as as_read
from tests.openai_server import Script
from tests.test_secrets import page_text

PASSWORD = "pw-4b1c9e7d"
QUERY_KEY = "qk-8f2a6d3c"
SECRETS = (PASSWORD, QUERY_KEY, "alice:")


pytestmark = pytest.mark.usefixtures("fresh_backend")


def with_credentials(port: int, query: bool = True) -> str:
    return f"http://alice:{PASSWORD}@127.0.0.1:{port}/v1" + (f"?api-key={QUERY_KEY}#frag" if query else "")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    "url",
    [
        "http://alice:pw@host:8080/v1?api-key=k#frag",
        "https://alice@[::1]:8443/openai/v1/",
        "http://host/v1;params?x=1",
        "HTTP://Host.Example/v1",
        "not a url",
        "http://[alice]:pw@127.0.0.1/v1",  # urllib refuses this one
    ],
)
def test_a_shown_url_has_scheme_host_port_and_path_only(url):
    shown = shown_url(url)
    assert "alice" not in shown and "pw" not in shown and "api-key" not in shown and "frag" not in shown
    assert "?" not in shown and "#" not in shown and "@" not in shown


def test_a_shown_url_keeps_what_says_where_the_server_is():
    assert shown_url("http://alice:pw@127.0.0.1:8080/v1?api-key=k#frag") == "http://127.0.0.1:8080/v1"
    assert shown_url("https://alice@[::1]:8443/openai/v1/") == "https://[::1]:8443/openai/v1/"
    assert shown_url(None) is None


def test_cannot_reach_names_the_server_without_its_credentials(history_dir, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    at = send(visit(with_credentials(port)), "Are you there?")
    assert not at.exception
    [error] = at.error
    assert f"Cannot reach the model server at http://127.0.0.1:{port}/v1." in as_read(error.value)
    assert leaks(page_text(at)) == []
    assert leaks(caplog.text + "".join(capfd.readouterr())) == []


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (Script(status=401, message=f"Incorrect password {PASSWORD} for alice:{PASSWORD}"), "(401)"),
        (Script(status=400, message=f"Bad request to http://alice:{PASSWORD}@127.0.0.1/v1"),
         "(400): Error code: 400 - Bad request to http://127.0.0.1/v1"),
        (Script(status=500, message=f"Upstream alice:{PASSWORD} failed"), "internal error (500)"),
        (Script("never", fault="html"), "did not answer in the OpenAI format"),
        (Script("partial", fault="error_event", fault_after=1, message=f"crash with {PASSWORD}"),
         "reported an error: crash with [redacted]"),
    ],
    ids=["401", "400", "500", "html", "error-event"],
)
def test_no_server_error_shows_the_credentials_of_the_base_url(
    openai_server, history_dir, caplog, capfd, script, says
):
    caplog.set_level(logging.DEBUG)
    openai_server.enqueue(script)
    at = send(visit(with_credentials(openai_server.port, query=False)), "Hello?")
    assert not at.exception
    [error] = at.error
    assert says in as_read(error.value)
    assert leaks(page_text(at)) == []
    assert leaks(caplog.text + "".join(capfd.readouterr())) == []


def test_a_query_in_the_base_url_is_not_shown_in_a_refusal_or_the_logs(
    openai_server, history_dir, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    at = send(visit(with_credentials(openai_server.port), CHATBOT_MODEL="test-model"), "Hello?")
    assert not at.exception
    assert "(404)" in as_read(at.error[0].value)  # the SDK puts the path after the query: no route matches
    assert leaks(page_text(at)) == []
    assert leaks(caplog.text + "".join(capfd.readouterr())) == []


def test_a_model_list_that_cannot_be_read_names_the_server_without_its_credentials(
    openai_server, history_dir
):
    openai_server.models_fault = "html"
    at = send(visit(with_credentials(openai_server.port, query=False)), "Hello?")
    assert not at.exception
    [error] = at.error
    says = f"the server at http://127.0.0.1:{openai_server.port}/v1 answered /v1/models"
    assert says in as_read(error.value)
    assert leaks(page_text(at)) == []
    for page in ("history", "insights"):
        go_to(at, page)
        assert leaks(page_text(at.run())) == [], page
