"""The bot profile: shipped profiles load and answer as their starters suggest; every mistake is named."""

import re

import pytest

from chatbot.profile import (
    DEFAULT_PROFILE,
    MATCH_KINDS,
    PROFILES_DIR,
    SCRIPTED_KEYS,
    TOP_KEYS,
    Profile,
    ProfileError,
    ScriptedAnswer,
    load_profile,
    parse_profile,
)
from chatbot.settings import load_settings

SHIPPED = sorted(PROFILES_DIR.glob("*.toml"))


def test_the_three_profiles_are_shipped():
    assert [path.stem for path in SHIPPED] == ["customer_service", "default", "tutor"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_each_shipped_profile_loads_and_documents_every_key(path):
    profile = load_profile(path)
    assert profile.source == str(path)
    assert profile.name and profile.persona and profile.greeting
    assert bool(profile.fallback) == (path.stem != "default"), "the default shows errors and Retry instead"
    assert 3 <= len(profile.starters) <= 6
    header = path.read_text(encoding="utf-8").split("\n\n")[0]
    assert all(line.startswith("#") for line in header.splitlines())
    for key in (*TOP_KEYS, *SCRIPTED_KEYS):
        assert re.search(rf"^#\s+(\[\[)?{key}\b", header, re.MULTILINE), (
            f"{path.name} does not document {key}"
        )


def test_no_path_means_the_default_profile():
    profile = load_profile(None)
    assert profile.source == str(DEFAULT_PROFILE)
    assert profile.name == "Chatbot" and len(profile.starters) == 3
    assert profile == load_profile("")
    # The default sends every message, starters included, to the model.
    assert all(profile.scripted_answer(starter) is None for starter in profile.starters)


def test_customer_service_answers_its_starters_by_rule():
    profile = load_profile(PROFILES_DIR / "customer_service.toml")
    assert profile.name == "Acme Outfitters Help" and profile.avatar == ":material/support_agent:"
    assert len(profile.starters) == 4
    assert {kind for entry in profile.scripted for kind in MATCH_KINDS if getattr(entry, kind)} == set(
        MATCH_KINDS
    )
    answers = [profile.scripted_answer(starter) for starter in profile.starters]
    expected = ["Monday to Friday 9:00-18:00", "within 30 days", "tracking link", "$5.95"]
    for answer, fragment in zip(answers, expected, strict=True):
        assert answer is not None and fragment in answer
    examples = {
        "  when are you OPEN?!": "Monday to Friday",
        "Can you track order 10423 for me": "tracking link",
        "Where’s my parcel?": "tracking link",
        "Is there free shipping?": "$5.95",
        "How can I contact you?": "+1 555 0100",
    }
    for message, fragment in examples.items():
        assert fragment in (profile.scripted_answer(message) or ""), message
    assert profile.scripted_answer("Do you sell rain jackets?") is None
    assert "support@acme-outfitters.example" in profile.fallback


def test_tutor_explains_itself_and_will_not_just_give_the_answer():
    profile = load_profile(PROFILES_DIR / "tutor.toml")
    assert "guiding question" in profile.persona
    assert "maths" in profile.scripted_answer(profile.starters[0])
    assert [profile.scripted_answer(starter) for starter in profile.starters[1:]] == [None] * 3
    for message in ("Just give me the answer!", "what's the answer", "Tell me the FINAL answer please"):
        assert "What have you tried" in profile.scripted_answer(message)


def test_exact_ignores_case_spacing_and_trailing_punctuation_but_needs_the_whole_message():
    entry = ScriptedAnswer("9 to 5", exact=("Opening hours",))
    for message in ("opening hours", "  OPENING \n  Hours ?!", "opening hours.", "Opening hours;,"):
        assert entry.matches(message), message
    for message in ("opening hours today", "¿opening hours", "opening-hours", ""):
        assert not entry.matches(message), message


def test_keywords_all_appear_as_whole_words_in_any_order_and_case():
    entry = ScriptedAnswer("30 days", keywords=("return", "policy", "money back"))
    assert entry.matches("POLICY for money   back on a Return?")
    assert not entry.matches("return policy")  # every keyword, not any
    assert not entry.matches("returned items policy, money back")  # whole words only
    assert ScriptedAnswer("c", keywords=("c++",)).matches("Is C++ hard?")


def test_pattern_is_searched_ignoring_case_even_when_compiled_without_it():
    entry = ScriptedAnswer("tracking", pattern=re.compile(r"\border\s+#?\d{5}\b"))
    assert entry.matches("Where is ORDER #10423?")
    assert not entry.matches("order 123")
    assert ScriptedAnswer("x", pattern="^hi$").matches("HI")


def test_a_scripted_answer_needs_exactly_one_way_to_match():
    with pytest.raises(ValueError, match="exactly one"):
        ScriptedAnswer("x")
    with pytest.raises(ValueError, match="exactly one"):
        ScriptedAnswer("x", exact=("a",), keywords=("a",))


def test_the_first_matching_entry_wins():
    profile = Profile(
        scripted=(
            ScriptedAnswer("returns", keywords=("return",)),
            ScriptedAnswer("shipping", keywords=("shipping",)),
            ScriptedAnswer("never", keywords=("return", "shipping")),
        )
    )
    assert profile.scripted_answer("return shipping costs") == "returns"
    assert profile.scripted_answer("shipping to Canada") == "shipping"
    assert profile.scripted_answer("hello") is None
    assert Profile().scripted_answer("anything") is None


ENTRY = '[[scripted]]\nanswer = "a"\nexact = ["hi"]\n'
KNOWN = "Known keys: name, avatar, persona, greeting, starters, fallback, scripted."
INVALID = [
    ("typo", 'greting = "Hi"', f"unknown key 'greting' (did you mean 'greeting'?). {KNOWN}"),
    ("unknown", 'colour_scheme = "dark"', f"unknown key 'colour_scheme'. {KNOWN}"),
    (
        "entry-typo",
        '[[scripted]]\nanswer = "a"\nkeyword = ["b"]',
        "unknown key 'keyword' in 'scripted[1]' (did you mean 'keywords'?). "
        "Known keys: answer, exact, keywords, pattern.",
    ),
    ("name-type", "name = 42", "'name' must be text, not a number (42). Put it in quotes"),
    ("avatar-type", "avatar = true", "'avatar' must be text, not true/false (true)"),
    ("starters-type", 'starters = "Hi"', "'starters' must be a list of strings, like starters = ["),
    ("starter-item", 'starters = ["Hi", 3]', "'starters' must be a list of strings, like starters = ["),
    ("empty-greeting", 'greeting = "  "', "'greeting' is empty. Write it, or remove the key."),
    ("empty-name", 'name = ""', "'name' is empty. Give the bot a name, or remove the key"),
    ("empty-starter", 'starters = ["Hi", ""]', "'starters[2]' is empty"),
    ("seven-starters", f"starters = {[str(n) for n in range(7)]}", "'starters' has 7 entries; at most 6"),
    ("no-answer", '[[scripted]]\nexact = ["hi"]', "'scripted[1]' has no 'answer'. Add answer = "),
    ("empty-answer", '[[scripted]]\nanswer = ""\nexact = ["hi"]', "'scripted[1].answer' is empty"),
    (
        "no-match",
        '[[scripted]]\nanswer = "a"',
        "'scripted[1]' does not say when to answer. Add one of 'exact', 'keywords' or 'pattern'.",
    ),
    (
        "two-matches",
        ENTRY + 'keywords = ["hi"]',
        "'scripted[1]' has both 'exact' and 'keywords'; use one per entry",
    ),
    ("empty-exact", '[[scripted]]\nanswer = "a"\nexact = []', "'scripted[1].exact' is an empty list"),
    (
        "empty-keywords",
        '[[scripted]]\nanswer = "a"\nkeywords = []',
        "'scripted[1].keywords' is an empty list",
    ),
    ("keywords-type", '[[scripted]]\nanswer = "a"\nkeywords = "b"', "'scripted[1].keywords' must be a list"),
    (
        "punctuation",
        '[[scripted]]\nanswer = "a"\nexact = ["?"]',
        "'scripted[1].exact[1]' is only punctuation",
    ),
    (
        "bad-regex",
        ENTRY + "[[scripted]]\nanswer = 'b'\npattern = '(order'",
        "'scripted[2].pattern' is not a valid regular expression "
        "(missing ), unterminated subpattern at position 0). Fix it or use 'keywords'.",
    ),
    ("scripted-table", '[scripted]\nanswer = "a"', "'scripted' must be [[scripted]] tables (two brackets)"),
    ("long-persona", f'persona = "{"x" * 20_001}"', "'persona' has 20,001 characters; the limit is 20,000."),
    ("long-greeting", f'greeting = "{"x" * 2_001}"', "'greeting' has 2,001 characters; the limit is 2,000."),
    (
        "long-answer",
        f'{ENTRY}answer = "{"x" * 2_001}"'.replace('answer = "a"\n', ""),
        "'scripted[1].answer' has",
    ),
    ("toml", 'name = "Bot"\ngreeting = Hello', "is not valid TOML: Invalid value (at line 2, column 12)."),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_each_mistake_is_named_with_the_file_the_key_and_the_fix(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile("x.toml")
    assert str(caught.value).startswith(f"Bot profile 'x.toml': {message}")
    assert isinstance(caught.value, ValueError) and caught.value.source == "x.toml"


def test_the_spec_examples_word_for_word():
    with pytest.raises(ProfileError) as caught:
        parse_profile({"greting": "Hi"}, "x.toml")
    assert (
        str(caught.value)
        == f"Bot profile 'x.toml': unknown key 'greting' (did you mean 'greeting'?). {KNOWN}"
    )
    assert caught.value.key == "greting"
    entries = [{"answer": "a", "exact": ["hi"]}, {"answer": "b", "pattern": "("}]
    with pytest.raises(ProfileError) as caught:
        parse_profile({"scripted": entries}, "x.toml")
    assert str(caught.value) == (
        "Bot profile 'x.toml': 'scripted[2].pattern' is not a valid regular expression "
        "(missing ), unterminated subpattern at position 0). Fix it or use 'keywords'."
    )
    assert caught.value.key == "scripted[2].pattern"


def test_the_limits_themselves_are_allowed():
    profile = parse_profile({"persona": "x" * 20_000, "starters": ["s"] * 6, "greeting": "g" * 2_000}, "x")
    assert len(profile.persona) == 20_000 and len(profile.starters) == 6


def test_a_missing_file_says_how_to_fix_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProfileError) as caught:
        load_profile("bots/shop.toml")
    text = str(caught.value)
    assert text.startswith("Bot profile 'bots/shop.toml': not found; set CHATBOT_PROFILE to the path of a ")
    assert ".toml file (see chatbot/profiles/), or unset it." in text
    assert f"Relative paths start from {tmp_path}." in text
    with pytest.raises(ProfileError, match=r"Did you mean 'chatbot/profiles/tutor.toml'\?"):
        load_profile("tutor")
    with pytest.raises(
        ProfileError, match=r"is a folder, not a file; set CHATBOT_PROFILE to the path of a \.toml file"
    ):
        load_profile(tmp_path)


def test_a_file_that_is_not_utf8_is_refused_and_a_byte_order_mark_is_fine(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "Bot"\ngreeting = "Grüß dich"\n'.encode("latin-1"))
    with pytest.raises(ProfileError, match=r"'.*latin1.toml': is not UTF-8 text \(byte 0xfc on line 2\)"):
        load_profile(latin1)
    bom = tmp_path / "bom.toml"
    bom.write_bytes('name = "Bötchen"\n'.encode("utf-8-sig"))
    assert load_profile(bom).name == "Bötchen"


def test_text_is_stripped_and_unset_keys_keep_their_defaults():
    profile = parse_profile({"greeting": "\n  Hello!  \n", "starters": [" Hi "]}, "inline")
    assert profile == Profile(greeting="Hello!", starters=("Hi",), source="inline")


def test_settings_read_chatbot_profile():
    assert load_settings(environ={}).profile_path is None
    assert load_settings(environ={"CHATBOT_PROFILE": "bots/shop.toml"}).profile_path == "bots/shop.toml"
    secrets = {"CHATBOT_PROFILE": "from-secrets.toml"}
    assert (
        load_settings(secrets=secrets, environ={"CHATBOT_PROFILE": "env.toml"}).profile_path
        == secrets["CHATBOT_PROFILE"]
    )
    assert load_settings(environ={"CHATBOT_PROFILE": ""}).profile_path is None
