"""Privacy: nothing a person typed is readable in the logs or in the database file.

The scan replays every transcript through the engine on an encrypted SQLite store with
pseudonymous keys, logging at DEBUG for every logger, then looks for every word the people
typed in the log output and in the raw bytes of the database and its -wal and -shm files.
The rest pins the pieces: session keys, sealing, rotation, the start-up key check, the
retention purge and the `hotline purge` and `hotline keygen` commands.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import random
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.serve.logs import configure_logging
from adapters.serve.run import purge
from engine import privacy
from engine.conversation import Address, Session
from engine.loader import load_folder
from engine.model import FlowSet
from engine.privacy import PrivacyError, Sealer, SessionKeys, keys_from_env, session_key
from engine.stores import SQLiteStore
from engine.stores.sqlite import StoreError
from engine.transcripts import LineKind, Replayer, find_transcripts, load_transcript

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPTS = ROOT / "tests" / "transcripts"
KEY_A, KEY_B, SECRET = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def env(*keys: bytes, secret: bytes = SECRET) -> dict[str, str]:
    return {"HOTLINE_KEYS": ",".join(b64(k) for k in keys), "HOTLINE_KEY_SECRET": b64(secret)}


def open_store(path: Path, *keys: bytes, secret: bytes = SECRET) -> SQLiteStore:
    secrets = keys_from_env(env(*keys, secret=secret))
    return SQLiteStore(path, sealer=secrets.sealer, identity=secrets.keys.fingerprint())


# --------------------------------------------------------------------------- the scan


@pytest.fixture
def all_logs_at_debug() -> Iterator[io.StringIO]:
    """Every logger, ours and the libraries', at DEBUG into one buffer."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    loggers = [logging.getLogger(n) for n in list(root.manager.loggerDict)]
    saved = [(logger, logger.level, logger.disabled) for logger in [root, *loggers]]
    for logger, _, _ in saved:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def typed_words(transcripts: list) -> set[str]:
    """Words (4+ letters or digits) of what people typed: `user:` lines, less commands and
    lines that only repeat a button label (the bot's own words)."""
    labels = set()
    for transcript in transcripts:
        for line in transcript.lines:
            if line.kind is LineKind.BOT and line.buttons:
                labels.update(label.casefold() for label in line.buttons)
    words: set[str] = set()
    for transcript in transcripts:
        for line in transcript.lines:
            text = line.text.strip()
            if line.kind is not LineKind.USER or text.startswith("/"):
                continue
            if text.casefold() in labels:
                continue
            words.update(w for w in re.findall(r"\w+", text) if len(w) >= 4)
    return words


def id_words(flows: FlowSet) -> set[str]:
    """The flow and step ids, whole (`dont_know`) and in parts (`know`), casefolded."""
    names = set(flows.flows)
    for flow in flows.flows.values():
        names.update(flow.steps)
    found = {name.casefold() for name in names}
    for name in names:
        found.update(part.casefold() for part in re.split(r"[_.\W]+", name) if part)
    return found


def test_no_typed_word_reaches_the_logs_or_the_database_file(
    tmp_path: Path, all_logs_at_debug: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nonces are random in production; seeded here so the ciphertext, and the verdict,
    # are the same on every run (a 4-letter word could otherwise turn up by chance in
    # random bytes).
    seeded = random.Random(9)
    monkeypatch.setattr(privacy, "_new_nonce", lambda: seeded.randbytes(privacy.NONCE_SIZE))
    files, missing = find_transcripts([TRANSCRIPTS])
    assert files and not missing
    transcripts = []
    for file in files:
        transcript, report = load_transcript(file)
        assert transcript is not None, report.errors
        transcripts.append(transcript)
    words = typed_words(transcripts)
    assert len(words) > 50  # the transcripts do type things: the scan is not vacuous

    database = tmp_path / "sessions.sqlite3"
    store = open_store(database, KEY_A)
    replayers: dict[Path, Replayer] = {}
    for transcript in transcripts:
        folder = (transcript.flows or ROOT / "flows").resolve()
        if folder not in replayers:
            flows, report = load_folder(folder)
            assert flows is not None, report.errors
            replayers[folder] = Replayer(flows, keys=SessionKeys(SECRET))
        run = replayers[folder].replay(transcript, store)
        assert not run.failed, run.message()
    assert store.count() == 1  # one person for all: each transcript starts them afresh
    store.close()  # the WAL is checkpointed into the file: scan both states

    # `transitions` logs the states it enters at DEBUG: step ids, the flow authors' words,
    # by design (the engine logs flow and step ids too). A typed word that is also a part
    # of an id ("summons") cannot be told apart there, so ids are whole words of their own.
    ids = {part for r in replayers.values() for part in id_words(r.flows)}
    logged = set(re.findall(r"\w+", all_logs_at_debug.getvalue().casefold())) - ids
    raw = b"".join(
        path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith(database.name)
    )
    in_logs = sorted(w for w in words if w.casefold() in logged)
    in_file = sorted(w for w in words if w.encode() in raw or w.lower().encode() in raw)
    assert not in_logs, f"typed words in the logs: {in_logs}"
    assert not in_file, f"typed words in the database file: {in_file}"


def test_the_scan_would_see_an_unsealed_store(tmp_path: Path) -> None:
    # The same scan on what schema 1 stored (plain JSON) finds the words: it is not blind.
    db = sqlite3.connect(tmp_path / "plain.sqlite3")
    record = json.dumps({"a": {"name": "Иванов Иван"}}, ensure_ascii=False).encode()
    db.execute("CREATE TABLE t (record BLOB)")
    db.execute("INSERT INTO t VALUES (?)", (record,))
    db.commit()
    db.close()
    assert "Иванов".encode() in (tmp_path / "plain.sqlite3").read_bytes()


# --------------------------------------------------------------------------- session keys


def test_session_keys_are_stable_and_differ_per_channel_and_chat() -> None:
    keys = SessionKeys(SECRET)
    one = keys.key(Address("telegram", "12345"))
    assert one == SessionKeys(SECRET).key(Address("telegram", "12345"))
    assert len(one) == 32 and "12345" not in one
    others = {
        keys.key(Address("telegram", "12346")),
        keys.key(Address("matrix", "12345")),
        SessionKeys(KEY_A).key(Address("telegram", "12345")),
    }
    assert one not in others and len(others) == 3
    # Without keys (console, replay: nothing on disk) the key is the plain address.
    assert session_key(Address("console", "you"), None) == "console:you"
    assert session_key(Address("telegram", "1"), keys) == keys.key(Address("telegram", "1"))


def test_the_engine_stores_new_sessions_under_the_pseudonymous_key() -> None:
    from engine.conversation import Inbound
    from engine.runtime import Engine

    flows, _ = load_folder(ROOT / "tests" / "data" / "semantics")
    assert flows is not None
    keys = SessionKeys(SECRET)
    person = Address("telegram", "777")
    outcome = Engine(flows, keys=keys).handle(None, Inbound.typed(person, "/start"))
    assert outcome.session is not None
    assert outcome.session.key == keys.key(person) != "telegram:777"


# --------------------------------------------------------------------------- sealing


def test_seal_and_open_round_trip_bound_to_its_context() -> None:
    sealer = Sealer([KEY_A])
    sealed = sealer.seal(b"secret answer", b"row-1")
    assert b"secret answer" not in sealed
    assert sealer.open(sealed, b"row-1") == b"secret answer"
    with pytest.raises(PrivacyError, match="altered or damaged"):
        sealer.open(sealed, b"row-2")  # moved to another row


def test_tampered_ciphertext_is_refused() -> None:
    sealer = Sealer([KEY_A])
    sealed = bytearray(sealer.seal(b"secret answer"))
    sealed[-1] ^= 1
    with pytest.raises(PrivacyError, match="altered or damaged"):
        sealer.open(bytes(sealed))


def test_rotation_old_key_still_opens_new_records_use_the_new_key(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = open_store(path, KEY_A)
    store.save(Session(key="k1", language="en", answers={"name": "Alpha"}, updated=1.0))
    store.close()
    rotated = open_store(path, KEY_B, KEY_A)  # the new key in front of the old one
    loaded = rotated.load("k1")
    assert loaded is not None and loaded.answers == {"name": "Alpha"}
    rotated.save(loaded)
    rotated.close()
    # Resealed with the new key: it opens without the old one now, and so does the store.
    only_new = open_store(path, KEY_B)
    assert only_new.load("k1") == loaded
    only_new.close()


def test_a_record_sealed_with_a_removed_key_names_what_to_do() -> None:
    old, new = Sealer([KEY_A]), Sealer([KEY_B])
    with pytest.raises(PrivacyError, match="not in HOTLINE_KEYS: put the key"):
        new.open(old.seal(b"x"))


# --------------------------------------------------------------------------- at start


def test_missing_or_malformed_keys_are_refused_with_what_to_do() -> None:
    with pytest.raises(PrivacyError, match=r"HOTLINE_KEYS is not set.*hotline keygen"):
        keys_from_env({})
    with pytest.raises(PrivacyError, match="HOTLINE_KEY_SECRET is not set"):
        keys_from_env({"HOTLINE_KEYS": b64(KEY_A)})
    with pytest.raises(PrivacyError, match="not valid base64"):
        keys_from_env({"HOTLINE_KEYS": "not a key!", "HOTLINE_KEY_SECRET": b64(SECRET)})
    with pytest.raises(PrivacyError, match="must be 32 bytes"):
        keys_from_env({"HOTLINE_KEYS": b64(b"short"), "HOTLINE_KEY_SECRET": b64(SECRET)})


def test_a_wrong_key_or_secret_is_refused_at_start_without_printing_it(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    open_store(path, KEY_A).close()
    with pytest.raises(StoreError, match="HOTLINE_KEYS does not open this session store") as e:
        open_store(path, KEY_B)
    assert b64(KEY_B) not in str(e.value) and b64(KEY_A) not in str(e.value)
    with pytest.raises(StoreError, match="HOTLINE_KEY_SECRET differs"):
        open_store(path, KEY_A, secret=KEY_B)
    open_store(path, KEY_A).close()  # the right keys still open it


def test_a_schema_1_file_with_unsealed_sessions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE sessions (key TEXT PRIMARY KEY, updated REAL, record BLOB)")
    db.execute("INSERT INTO sessions VALUES ('telegram:1', 1.0, '{}')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="holds 1 unencrypted session"):
        open_store(path, KEY_A)
    # An empty schema 1 file is simply upgraded.
    db = sqlite3.connect(path)
    db.execute("DELETE FROM sessions")
    db.commit()
    db.close()
    open_store(path, KEY_A).close()


def _serve_config(tmp_path: Path, retention_flows: Path | None = None) -> Path:
    config = tmp_path / "hotline.yaml"
    config.write_text(
        f"flows: {retention_flows or ROOT / 'flows'}\n"
        f"store: {{sqlite: {tmp_path / 'sessions.sqlite3'}}}\n"
        "telegram: {}\n",
        encoding="utf-8",
    )
    return config


def test_serve_refuses_to_start_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HOTLINE_KEYS", raising=False)
    monkeypatch.delenv("HOTLINE_KEY_SECRET", raising=False)
    assert main(["serve", "--config", str(_serve_config(tmp_path))]) == 2
    assert "HOTLINE_KEYS is not set" in capsys.readouterr().err
    assert not (tmp_path / "sessions.sqlite3").exists()


# --------------------------------------------------------------------------- retention


def test_purge_by_retention(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3", KEY_A)
    day = 86400.0
    now = 100 * day
    store.save(Session(key="old", language="en", updated=now - 31 * day))
    store.save(Session(key="recent", language="en", updated=now - 2 * day))
    assert purge(store, 30, now=now) == 1
    assert store.load("old") is None and store.load("recent") is not None
    store.close()


def test_hotline_purge_prints_the_count_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env(KEY_A).items():
        monkeypatch.setenv(name, value)
    store = open_store(tmp_path / "sessions.sqlite3", KEY_A)
    store.save(Session(key="ancient", language="en", updated=1000.0))
    store.save(Session(key="ancient2", language="en", updated=2000.0))
    store.close()
    assert main(["purge", "--config", str(_serve_config(tmp_path))]) == 0
    assert capsys.readouterr().out == "2\n"
    monkeypatch.setenv("HOTLINE_KEYS", b64(KEY_B))
    assert main(["purge", "--config", str(_serve_config(tmp_path))]) == 2
    assert "does not open this session store" in capsys.readouterr().err


def test_the_running_bot_purges_at_start(tmp_path: Path) -> None:
    from adapters.serve.run import purge_every

    store = open_store(tmp_path / "s.sqlite3", KEY_A)
    store.save(Session(key="ancient", language="en", updated=1000.0))

    async def briefly() -> None:
        task = asyncio.create_task(purge_every(store, 30, every=3600))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if store.count() == 0:
                break
        task.cancel()

    asyncio.run(briefly())
    assert store.count() == 0
    store.close()


# --------------------------------------------------------------------------- keygen, logs


def test_hotline_keygen_prints_a_fresh_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out.strip()
    assert first != second and len(base64.b64decode(first)) == 32
    keys_from_env({"HOTLINE_KEYS": first, "HOTLINE_KEY_SECRET": second})


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_serve_logs_redact_secrets_and_quiet_the_libraries(log_format: str) -> None:
    token = "123456:AAE-secret-part-of-the-token"
    out = io.StringIO()
    undo = configure_logging(log_format, {"TELEGRAM_BOT_TOKEN": token, **env(KEY_A)}, stream=out)
    try:
        logging.getLogger("hotline.test").info("calling /bot%s/getMe with %s", token, b64(KEY_A))
        logging.getLogger("httpx").info("HTTP Request: POST /bot%s/sendMessage", token)
        assert logging.getLogger("nio").getEffectiveLevel() == logging.WARNING
    finally:
        undo()
    text = out.getvalue()
    assert token.partition(":")[2] not in text and b64(KEY_A) not in text
    assert "<redacted>" in text and "sendMessage" not in text
    if log_format == "json":
        [line] = text.splitlines()
        assert json.loads(line)["logger"] == "hotline.test"
