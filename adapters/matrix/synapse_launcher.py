"""A throwaway Synapse homeserver on 127.0.0.1, for the tests and `hotline replay --channel matrix`.

    with LocalSynapse(tmp_dir) as hs:          # writes a config, starts, waits for /health
        bot = hs.register("bot")               # an Account with an access token and device
        user = hs.register("alice")
        hs.url                                 # http://127.0.0.1:PORT

The server is `server_name: localhost`, SQLite, one client-only listener, no federation,
no presence, `bcrypt_rounds: 4`, and every rate limit relaxed except the one on messages,
which keeps Synapse's default (0.2 a second, bursts of 10) so that the bot's rate-limit
handling can be tested for real. Accounts registered here are exempted from it by the admin
API (`exempt=True`, the default), exactly as the README tells an administrator to exempt
the bot; pass `exempt=False` for an account that should meet the limit.

Its SQLite database lives in RAM (/dev/shm) when the machine has it: a throwaway server
needs no fsync, and answers about twice as fast. `stop()` then `start()` is a homeserver
restart that keeps the database; `close()` (or leaving the `with`) discards it. A server
still running when Python exits is stopped then.

Needs the `matrix-synapse` package (`synapse_available()` says whether it is importable).
Synchronous on purpose: the tests call it from a session fixture, the replay driver from a
worker thread.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_NAME = "localhost"


def synapse_available() -> bool:
    """True when `matrix-synapse` is installed in this environment."""
    return importlib.util.find_spec("synapse") is not None


class SynapseError(Exception):
    """Synapse could not be started, or refused an admin request."""


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    password: str
    access_token: str
    device_id: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalSynapse:
    """One Synapse process with its config, database and media in `directory`."""

    def __init__(self, directory: str | Path, *, max_upload_size: str = "50M") -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server_name = SERVER_NAME
        self.max_upload_size = max_upload_size
        self._secret = secrets.token_hex(16)
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: Account | None = None
        self._log = self.directory / "homeserver.log"
        self._out = self.directory / "stdout.log"
        self._ram_dir: str | None = None

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> LocalSynapse:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and discard its database (`stop` alone keeps it for a `start`
        again, as a homeserver restart)."""
        self.stop()
        if self._ram_dir is not None:
            shutil.rmtree(self._ram_dir, ignore_errors=True)
            self._ram_dir = None

    def start(self, timeout: float = 90.0) -> None:
        if not synapse_available():
            raise SynapseError("matrix-synapse is not installed: pip install matrix-synapse")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        output = open(self._out, "ab")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and file
            [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config)],
            cwd=self.directory,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        output.close()
        atexit.register(self.close)  # never leave a homeserver running behind us
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SynapseError(
                    f"Synapse exited with code {self._process.returncode}; see {self._log}:\n"
                    + self.log_tail()
                )
            if self._healthy():
                return
            time.sleep(0.1)
        self.stop()
        raise SynapseError(f"Synapse did not answer /health in {timeout:.0f} s; see {self._log}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Synapse's log and of its stdout/stderr, for error messages."""
        tail: list[str] = []
        for path in (self._log, self._out):
            with contextlib.suppress(OSError):
                tail += path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "\n".join(tail)

    # ------------------------------------------------------------------ accounts

    def register(
        self,
        localpart: str,
        password: str | None = None,
        *,
        admin: bool = False,
        exempt: bool = True,
    ) -> Account:
        """Create an account with the shared-secret admin API; exempt it from the message
        rate limit unless `exempt=False`."""
        password = password or secrets.token_hex(12)
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self._secret.encode(), digestmod=hashlib.sha1)
        for part in (nonce, localpart, password):
            mac.update(part.encode("utf-8"))
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        reply = self._request(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        account = Account(reply["user_id"], password, reply["access_token"], reply["device_id"])
        if exempt:
            self.exempt_from_ratelimit(account.user_id)
        return account

    def exempt_from_ratelimit(self, user_id: str) -> None:
        """What the README tells an administrator to do for the bot account."""
        path = f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit"
        self._request(
            "POST", path, {"messages_per_second": 0, "burst_count": 0}, token=self.admin_token
        )

    @property
    def admin_token(self) -> str:
        if self._admin is None:
            self._admin = self.register(f"admin-{secrets.token_hex(4)}", admin=True, exempt=False)
        return self._admin.access_token

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                return dict(json.loads(reply.read() or b"{}"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", errors="replace")[:300]
            raise SynapseError(f"{method} {path.split('?')[0]}: HTTP {err.code}: {detail}") from err

    # ------------------------------------------------------------------ config

    def _database_path(self) -> Path:
        """In RAM when the machine has /dev/shm: a throwaway server needs no fsync, and
        Synapse's SQLite answers twice as fast there."""
        shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside it
        if self._ram_dir is None and shm.is_dir() and os.access(shm, os.W_OK):
            self._ram_dir = tempfile.mkdtemp(prefix="hotline-synapse-", dir=shm)
        base = Path(self._ram_dir) if self._ram_dir is not None else self.directory
        return base / "homeserver.db"

    def _write_config(self) -> Path:
        from signedjson.key import generate_signing_key, write_signing_keys  # synapse's dep

        d = self.directory
        key_file = d / "signing.key"
        if not key_file.exists():
            with open(key_file, "w", encoding="utf-8") as stream:
                write_signing_keys(stream, [generate_signing_key("a_1")])
        log_config = d / "log.config"
        log_config.write_text(_LOG_CONFIG.format(log=d / "homeserver.log"), encoding="utf-8")
        relaxed = {"per_second": 1000, "burst_count": 1000}
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"{self.url}/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self._database_path())}},
            "log_config": str(log_config),
            "media_store_path": str(d / "media"),
            "max_upload_size": self.max_upload_size,
            "signing_key_path": str(key_file),
            "registration_shared_secret": self._secret,
            "macaroon_secret_key": secrets.token_hex(16),
            "form_secret": secrets.token_hex(16),
            "report_stats": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "bcrypt_rounds": 4,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "enable_metrics": False,
            "update_profile_information": True,
            # Everything but messages is relaxed: tests register, log in and join a lot.
            "rc_registration": relaxed,
            "rc_login": {"address": relaxed, "account": relaxed, "failed_attempts": relaxed},
            "rc_joins": {"local": relaxed, "remote": relaxed},
            "rc_joins_per_room": relaxed,
            "rc_invites": {"per_room": relaxed, "per_user": relaxed, "per_issuer": relaxed},
            "rc_room_creation": relaxed,
            "rc_media_create": relaxed,
            "rc_key_requests": relaxed,
            "rc_presence": {"per_user": relaxed},
            "rc_profile": relaxed,
            "rc_delayed_event_mgmt": relaxed,
            # rc_message stays at Synapse's default: 0.2 a second, bursts of 10.
        }
        path = d / "homeserver.yaml"
        # JSON is YAML: no PyYAML quirks about the secrets.
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        os.chmod(path, 0o600)
        return path


_LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s %(levelname)s %(name)s: %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {log}
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"""
