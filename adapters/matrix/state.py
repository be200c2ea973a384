"""What the Matrix channel keeps across restarts, in `store_dir/channel.sqlite3`.

- the login: user id, device id, access token (so a restart is the same device);
- the sync token, saved only after every event of that sync was handled;
- the ids of the events already handled (a bounded set: the newest `keep` ids), so an event
  seen again after a crash is never answered twice;
- per room: the bot's latest buttons (label, payload) and the event id of the message that
  showed them, so "2" or a 2️⃣ reaction still presses the right button after a restart;
  whether the "cannot read encrypted messages" notice was sent.

No message text, no user id and no room name is stored here. Room ids and button labels
are; the trust work encrypts them at rest. The file is created readable by its owner only.
Every write is its own committed transaction (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.conversation import Button

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (n INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS rooms (
    room_id TEXT PRIMARY KEY,
    question_event TEXT,
    buttons TEXT NOT NULL DEFAULT '[]',
    encrypted_notice INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class Login:
    homeserver: str
    user_id: str
    device_id: str
    access_token: str


@dataclass(frozen=True, slots=True)
class LatestButtons:
    """The buttons of the bot's latest message in a room (empty: it had none)."""

    event_id: str | None
    buttons: tuple[Button, ...]


class ChannelState:
    """A small SQLite file; one instance per running channel."""

    def __init__(self, directory: Path, keep: int = 10_000) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / "channel.sqlite3"
        new = not path.exists()
        self.keep = keep
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if new:
            os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{path} was written by a newer hotline (schema {version}); upgrade hotline"
            )
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._seen_since_trim = 0

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ key-value

    def _get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM kv WHERE key=?", (key,))
        else:
            self.db.execute(
                "INSERT INTO kv(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    # ------------------------------------------------------------------ login

    def login(self) -> Login | None:
        raw = self._get("login")
        if raw is None:
            return None
        data = json.loads(raw)
        return Login(data["homeserver"], data["user_id"], data["device_id"], data["access_token"])

    def save_login(self, login: Login | None) -> None:
        if login is None:
            self._set("login", None)
            return
        self._set(
            "login",
            json.dumps(
                {
                    "homeserver": login.homeserver,
                    "user_id": login.user_id,
                    "device_id": login.device_id,
                    "access_token": login.access_token,
                }
            ),
        )

    def device_id(self) -> str | None:
        """The device id last used, kept even when the token was dropped (a re-login with
        a password then reuses the same device)."""
        return self._get("device_id")

    def save_device_id(self, device_id: str) -> None:
        self._set("device_id", device_id)

    # ------------------------------------------------------------------ sync position

    def sync_token(self) -> str | None:
        return self._get("sync_token")

    def save_sync_token(self, token: str) -> None:
        self._set("sync_token", token)

    # ------------------------------------------------------------------ handled events

    def seen(self, event_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM seen WHERE event_id=?", (event_id,)).fetchone()
        return row is not None

    def mark_seen(self, event_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO seen(event_id) VALUES(?)", (event_id,))
        self._seen_since_trim += 1
        if self._seen_since_trim >= max(self.keep // 10, 1):
            self._seen_since_trim = 0
            self.db.execute(
                "DELETE FROM seen WHERE n <= (SELECT MAX(n) FROM seen) - ?", (self.keep,)
            )

    def seen_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    # ------------------------------------------------------------------ rooms

    def latest_buttons(self, room_id: str) -> LatestButtons:
        row = self.db.execute(
            "SELECT question_event, buttons FROM rooms WHERE room_id=?", (room_id,)
        ).fetchone()
        if row is None:
            return LatestButtons(None, ())
        buttons = tuple(Button(label, payload) for label, payload in json.loads(row[1]))
        return LatestButtons(row[0], buttons)

    def save_latest_buttons(self, room_id: str, latest: LatestButtons) -> None:
        buttons = json.dumps([[b.label, b.payload] for b in latest.buttons], ensure_ascii=False)
        self.db.execute(
            "INSERT INTO rooms(room_id, question_event, buttons) VALUES(?, ?, ?) "
            "ON CONFLICT(room_id) DO UPDATE SET question_event=excluded.question_event, "
            "buttons=excluded.buttons",
            (room_id, latest.event_id, buttons),
        )

    def encrypted_notice_sent(self, room_id: str) -> bool:
        row = self.db.execute(
            "SELECT encrypted_notice FROM rooms WHERE room_id=?", (room_id,)
        ).fetchone()
        return bool(row and row[0])

    def save_encrypted_notice_sent(self, room_id: str) -> None:
        self.db.execute(
            "INSERT INTO rooms(room_id, encrypted_notice) VALUES(?, 1) "
            "ON CONFLICT(room_id) DO UPDATE SET encrypted_notice=1",
            (room_id,),
        )

    def forget_room(self, room_id: str) -> None:
        self.db.execute("DELETE FROM rooms WHERE room_id=?", (room_id,))

    def room_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM rooms").fetchone()[0])
