"""The fast layer: Matrix events to what the bot understands and back, config and state.
No homeserver needed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.matrix import build_channel
from adapters.matrix.channel import redact_nio_logs, transaction_id
from adapters.matrix.config import load_config
from adapters.matrix.convert import (
    BUTTONS_KEY,
    Ignored,
    MalformedEvent,
    Reacted,
    Typed,
    Unsupported,
    button_number,
    classify,
    file_content,
    reaction_number,
    split_body,
    strip_reply_fallback,
    text_content,
)
from adapters.matrix.state import ChannelState, LatestButtons, Login
from adapters.serve.config import ConfigError
from engine.conversation import Button


def message(content: dict, kind: str = "m.room.message") -> dict:
    return {"type": kind, "event_id": "$e", "sender": "@a:x", "content": content}


# --------------------------------------------------------------------------- inbound


def test_text_and_emote_are_typed_text() -> None:
    assert classify(message({"msgtype": "m.text", "body": "  summons  "})) == Typed("summons")
    assert classify(message({"msgtype": "m.emote", "body": "waves"})) == Typed("waves")


def test_bang_commands_are_the_engines_slash_commands() -> None:
    assert classify(message({"msgtype": "m.text", "body": "!start"})) == Typed("/start")
    assert classify(message({"msgtype": "m.text", "body": "!language en"})) == Typed("/language en")
    assert classify(message({"msgtype": "m.text", "body": "!wow"})) == Typed("!wow")


def test_a_reply_loses_its_quoted_fallback() -> None:
    content = {
        "msgtype": "m.text",
        "body": "> <@bot:x> Your full name?\n> second line\n\nIvan Petrov",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}},
    }
    assert classify(message(content)) == Typed("Ivan Petrov")
    assert strip_reply_fallback("no quote") == "no quote"
    assert strip_reply_fallback("> only a quote") == ""


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (message({"msgtype": "m.image", "body": "x.jpg", "url": "mxc://a/b"}), "image"),
        (message({"msgtype": "m.file", "body": "x.pdf"}), "file"),
        (message({"msgtype": "m.audio", "body": "voice"}), "audio"),
        (message({"msgtype": "m.video", "body": "v"}), "video"),
        (message({"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"}), "location"),
        (message({"msgtype": "org.example.custom", "body": "?"}), "other"),
        (message({"body": "s", "url": "mxc://a/b"}, "m.sticker"), "sticker"),
        (message({"call_id": "c", "offer": {}}, "m.call.invite"), "call"),
        (message({"question": {}}, "org.matrix.msc3381.poll.start"), "poll"),
    ],
)
def test_what_is_not_text_gets_the_polite_reply(event: dict, expected: str) -> None:
    assert classify(event) == Unsupported(expected)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            message(
                {
                    "msgtype": "m.text",
                    "body": "* new",
                    "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"},
                }
            ),
            "edit",
        ),
        (message({"msgtype": "m.notice", "body": "another bot"}), "notice"),
        (message({}), "redacted"),
        (message({"msgtype": "m.text", "body": "   "}), "empty"),
        (message({"redacts": "$x"}, "m.room.redaction"), "redaction"),
        (message({"call_id": "c"}, "m.call.hangup"), "call"),
        (message({"typing": True}, "m.typing"), "other"),
        ({**message({"membership": "join"}, "m.room.member"), "state_key": "@a:x"}, "state"),
        (
            message(
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q", "key": "👍"}},
                "m.reaction",
            ),
            "reaction",
        ),
        (message({"msgtype": "m.key.verification.request", "body": "v"}), "verification"),
    ],
)
def test_edits_redactions_notices_and_the_like_are_ignored(event: dict, expected: str) -> None:
    assert classify(event) == Ignored(expected)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "m.room.message"},
        {"type": 5, "content": {}},
        message({"msgtype": "m.text", "body": 42}),
        message({"body": "Ivan"}),
        message({"msgtype": "m.text", "body": "x", "m.relates_to": "bad"}),
        message({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q"}}, "m.reaction"),
    ],
)
def test_malformed_events_raise_without_quoting_them(event: dict) -> None:
    with pytest.raises(MalformedEvent) as caught:
        classify(event)
    assert "42" not in str(caught.value) and "Ivan" not in str(caught.value)


def test_number_reactions_press_buttons() -> None:
    relates = {"rel_type": "m.annotation", "event_id": "$q", "key": "2️⃣"}
    assert classify(message({"m.relates_to": relates}, "m.reaction")) == Reacted("$q", 2)
    assert reaction_number("1\u20e3") == 1  # without the variation selector
    assert reaction_number("🔟") == 10
    assert reaction_number("👍") is None


def test_typed_numbers_pick_buttons_only_within_range() -> None:
    assert button_number("2", 3) == 2
    assert button_number(" 3. ", 3) == 3
    assert button_number("1)", 3) == 1
    assert button_number("3️⃣", 3) == 3
    assert button_number("4", 3) is None
    assert button_number("0", 3) is None
    assert button_number("2", 0) is None
    assert button_number("2 children", 3) is None


# --------------------------------------------------------------------------- outbound


def test_a_text_without_buttons_is_a_plain_notice() -> None:
    assert text_content("Hello", (), "m.notice") == {"msgtype": "m.notice", "body": "Hello"}
    assert text_content("Hi", (), "m.text")["msgtype"] == "m.text"


def test_buttons_become_a_numbered_list_in_plain_and_escaped_html() -> None:
    content = text_content('Pick <one> & "go"\nnow', ["A <b>", "B & C"])
    assert content["body"] == 'Pick <one> & "go"\nnow\n\n1. A <b>\n2. B & C'
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == (
        "<p>Pick &lt;one&gt; &amp; &quot;go&quot;<br>now</p>"
        "<ol><li>A &lt;b&gt;</li><li>B &amp; C</li></ol>"
    )
    assert content[BUTTONS_KEY] == ["A <b>", "B & C"]
    assert split_body(content) == ('Pick <one> & "go"\nnow', ("A <b>", "B & C"))


def test_a_question_without_text_is_only_its_list() -> None:
    content = text_content("", ["Yes", "No"])
    assert content["body"] == "1. Yes\n2. No"
    assert split_body(content) == ("", ("Yes", "No"))
    assert split_body({"body": "plain"}) == ("plain", ())


def test_documents_are_m_file_with_a_url_or_encrypted_file_info() -> None:
    plain = file_content("a.docx", "application/x", 3, url="mxc://s/m")
    assert plain == {
        "msgtype": "m.file",
        "body": "a.docx",
        "filename": "a.docx",
        "info": {"mimetype": "application/x", "size": 3},
        "url": "mxc://s/m",
    }
    secret = file_content("a.docx", "application/x", 3, encrypted_file={"url": "mxc://s/m"})
    assert "url" not in secret and secret["file"] == {"url": "mxc://s/m"}


def test_transaction_ids_are_stable_per_event_and_action() -> None:
    assert transaction_id("$a", 0) == transaction_id("$a", 0)
    assert len({transaction_id("$a", 0), transaction_id("$a", 1), transaction_id("$b", 0)}) == 3
    assert transaction_id("$a:b/c", 0).replace(".", "").isalnum()


# --------------------------------------------------------------------------- config


def test_config_defaults_and_relative_store_dir(tmp_path: Path) -> None:
    section = {"homeserver": "https://m.example.org/", "user_id": "@bot:example.org"}
    config, secrets = load_config(section, {"MATRIX_PASSWORD": "pw"}, tmp_path)
    assert config.homeserver == "https://m.example.org"
    assert config.allowed == frozenset({"example.org"})
    assert config.store_dir == tmp_path / "matrix-store"
    assert config.msgtype == "notice"
    assert secrets.password == "pw"
    assert "pw" not in repr(secrets)


@pytest.mark.parametrize(
    ("section", "env", "message"),
    [
        ({"homeserver": "m.example.org", "user_id": "@b:x"}, {}, "homeserver"),
        ({"homeserver": "https://x", "user_id": "bot"}, {}, "user_id"),
        ({"homeserver": "https://x", "user_id": "@b:x", "msgtype": "emote"}, {}, "msgtype"),
        ({"homeserver": "https://x", "user_id": "@b:x", "tokn": 1}, {}, "tokn"),
        ({"homeserver": "https://x", "user_id": "@b:x", "encryption": "on"}, {}, "STORE_KEY"),
    ],
)
def test_config_mistakes_are_named(section: dict, env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(section, env, Path("."))


def test_build_channel_is_what_serve_calls(tmp_path: Path) -> None:
    section = {"homeserver": "https://x", "user_id": "@b:x", "encryption": "off"}
    channel = build_channel(section, {"MATRIX_ACCESS_TOKEN": "t"}, tmp_path)
    assert channel.name == "matrix"
    assert not channel.encryption


def test_without_a_store_key_encryption_is_off_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    section = {"homeserver": "https://x", "user_id": "@b:x"}
    channel = build_channel(section, {}, tmp_path)
    assert not channel.encryption
    assert "MATRIX_STORE_KEY" in caplog.text


def test_nio_logs_keep_where_but_not_what(caplog: pytest.LogCaptureFixture) -> None:
    redact_nio_logs()
    logging.getLogger("nio.events.misc").warning("Error validating event: {'body': 'Ivan'}")
    logging.getLogger("nio.rooms").info("Room !abc:x handling event")
    assert "Ivan" not in caplog.text
    assert "!abc" not in caplog.text
    assert "details withheld" in caplog.text


# --------------------------------------------------------------------------- state


def test_state_survives_a_reopen_and_keeps_a_bounded_set_of_event_ids(tmp_path: Path) -> None:
    state = ChannelState(tmp_path / "s", keep=100)
    state.save_login(Login("https://x", "@b:x", "DEV", "tok"))
    state.save_sync_token("s1")
    buttons = (Button("Yes", "3.0"), Button("Нет", "3.1"))
    state.save_latest_buttons("!r:x", LatestButtons("$q", buttons))
    for i in range(250):
        state.mark_seen(f"$e{i}")
    assert state.seen_count() <= 120
    state.close()
    again = ChannelState(tmp_path / "s", keep=100)
    assert again.login() == Login("https://x", "@b:x", "DEV", "tok")
    assert again.sync_token() == "s1"
    assert again.latest_buttons("!r:x") == LatestButtons("$q", buttons)
    assert again.latest_buttons("!other:x") == LatestButtons(None, ())
    assert again.seen("$e249") and not again.seen("$e0")
    again.forget_room("!r:x")
    assert again.latest_buttons("!r:x").buttons == ()
    assert (tmp_path / "s" / "channel.sqlite3").stat().st_mode & 0o077 == 0
    again.close()
