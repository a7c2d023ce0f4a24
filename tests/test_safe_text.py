"""Stored and external text made safe to show: images become links, titles and notices plain text."""

from __future__ import annotations

import pytest
from streamlit.string_util import clean_text

from app_pages.safe_text import code, markdown, note, plain
from tests.hostile_text import BENIGN, CAUTIOUS, COSMETIC, HOSTILE


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in HOSTILE + CAUTIOUS], ids=[c[0] for c in HOSTILE + CAUTIOUS]
)
def test_every_image_becomes_a_link(text, expected):
    assert markdown(text) == expected


@pytest.mark.parametrize("text", BENIGN)
def test_markdown_that_shows_no_image_is_unchanged(text):
    assert markdown(text) == text


@pytest.mark.parametrize(("text", "expected"), COSMETIC)
def test_code_that_cannot_be_told_from_text_is_escaped_too(text, expected):
    assert markdown(text) == expected


@pytest.mark.parametrize("text", [case[1] for case in HOSTILE + CAUTIOUS] + BENIGN)
def test_what_streamlit_sends_is_what_was_checked(text):
    """Streamlit dedents and strips every body: the check reads the text after that, so nothing moves."""
    assert clean_text(markdown(text)) == markdown(text)


def test_a_reply_streamed_in_pieces_never_shows_an_image_at_any_length():
    reply = "Sure. ![x](URL/leak?d=SECRET) and `![y](z)` and\n```\n![w](v)\n```\nbye"
    for end in range(reply.index("![x]") + 2, len(reply) + 1):
        assert markdown(reply[:end]).startswith("Sure. \\!["), reply[:end]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("![x](http://a/b)", "!\\[x\\](http://a/b)"),
        ("# Title", "\\# Title"),
        ("**b** _i_ ~~s~~ `c`", "\\*\\*b\\*\\* \\_i\\_ \\~\\~s\\~\\~ \\`c\\`"),
        ("$x^2$ costs $5", "\\$x^2\\$ costs \\$5"),
        (":red[x] and :material/home:", "\\:red\\[x\\] and \\:material/home:"),
        ("<b>x</b> &amp; &#33;", "\\<b\\>x\\</b\\> \\&amp; \\&#33;"),
        ("a | b", "a \\| b"),
        ("1. x", "1\\. x"),
        ("- x", "\\- x"),
        ("+ x", "\\+ x"),
        ("===", "\\==="),
        ("---", "\\---"),
        ("> quoted", "\\> quoted"),
        ("C:\\path", "C:\\\\path"),
        ("    indented code", "indented code"),
        ("first\n\n- second", "first  \n\\- second"),
    ],
)
def test_plain_text_escapes_what_markdown_would_act_on(text, expected):
    assert plain(text) == expected


@pytest.mark.parametrize(
    "text",
    ["OPENAI_API_KEY", "Trip planning", "What's the return policy?",
     "Deleted “x”. History → Recently deleted", "http://127.0.0.1:9/v1", "(CHATBOT_MAX_MESSAGE_CHARS)",
     "12:30, 50% off, a@b.c, 3 + 4 = 7"],
)
def test_plain_text_leaves_ordinary_text_as_it_is(text):
    assert plain(text) == text


def test_plain_text_for_a_label_is_one_line():
    assert plain("two\nlines\r\n\tand a tab", one_line=True) == "two lines and a tab"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("gpt-4.1-mini", "`gpt-4.1-mini`"), ("a`b![x](y)", "``a`b![x](y)``"), ("`x", "`` `x ``"),
     ("a\nb", "`a b`"), ("", "")],
)
def test_a_name_is_one_code_span_whatever_backticks_it_holds(text, expected):
    assert code(text) == expected


def test_a_note_keeps_its_icon_and_shows_the_rest_as_text():
    assert note(":material/warning: Reply interrupted: ![x](y)") == (
        ":material/warning: Reply interrupted: !\\[x\\](y)"
    )
    assert note("no icon ![x](y)") == "no icon !\\[x\\](y)"
