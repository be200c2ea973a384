"""Privacy at rest: pseudonymous session keys and sealed (encrypted) session records.

- `SessionKeys(secret).key(address)`: the session key of a person, an HMAC-SHA256 of
  "channel:chat" under a secret, so the store never holds a chat id. `session_key(address,
  keys)` is the one function the engine, the hub and the console call; with `keys=None` it
  is the plain "channel:chat" (tests, console, replay: nothing is stored on disk).
- `Sealer(keys)`: AES-GCM over a record's bytes. A sealed record is
  `key id (4 bytes) | nonce (12 bytes) | ciphertext and tag`; the key id tells which key
  opens it, so keys can be rotated: the first key seals, every key opens. `context` (the
  session key) is bound as associated data: a record moved to another row does not open.
- `keys_from_env(environ)`: both from the environment, `HOTLINE_KEYS` (comma-separated
  base64 32-byte keys, newest first) and `HOTLINE_KEY_SECRET` (base64 32 bytes, the HMAC
  secret, never rotated: changing it orphans every stored session).

Errors never contain a key: only its id, and what to do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.conversation import Address

KEYS_VAR = "HOTLINE_KEYS"
SECRET_VAR = "HOTLINE_KEY_SECRET"  # noqa: S105 - the variable's name, not a secret
KEY_SIZE = 32
KEY_ID_SIZE = 4
NONCE_SIZE = 12
KEY_HEX_CHARS = 32  # session keys: 128 bits of the HMAC, as hex


class PrivacyError(Exception):
    """Keys missing or malformed, or a sealed record that cannot be opened."""


# --------------------------------------------------------------------------- session keys


class SessionKeys:
    """Pseudonymous session keys: the same person always gets the same key, and nobody
    without the secret can tell whose key it is."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise PrivacyError(f"the session key secret must be at least 16 bytes ({SECRET_VAR})")
        self._secret = secret

    def key(self, address: Address) -> str:
        plain = f"{address.channel}:{address.chat}".encode()
        return hmac.new(self._secret, plain, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]

    def fingerprint(self) -> bytes:
        """Identifies the secret without revealing it (kept sealed in the store's canary)."""
        return hmac.new(self._secret, b"hotline fingerprint", hashlib.sha256).digest()[:8]

    def __repr__(self) -> str:
        return "SessionKeys(<secret>)"


def session_key(address: Address, keys: SessionKeys | None) -> str:
    """The key a person's session is stored under: pseudonymous with `keys`, else plain."""
    if keys is None:
        return f"{address.channel}:{address.chat}"
    return keys.key(address)


# --------------------------------------------------------------------------- sealing


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"hotline key id\0" + key).digest()[:KEY_ID_SIZE]


def _new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


class Sealer:
    """AES-GCM with rotation: `keys[0]` seals, any of `keys` opens."""

    __slots__ = ("_ciphers", "_current")

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise PrivacyError(f"no encryption key: set {KEYS_VAR} (run `hotline keygen`)")
        self._ciphers: dict[bytes, AESGCM] = {}
        for key in keys:
            if len(key) != KEY_SIZE:
                raise PrivacyError(
                    f"{KEYS_VAR}: every key must be {KEY_SIZE} bytes, base64-encoded "
                    f"(one has {len(key)}); make one with `hotline keygen`"
                )
            self._ciphers.setdefault(key_id(key), AESGCM(key))
        self._current = key_id(keys[0])

    @property
    def current_id(self) -> str:
        return self._current.hex()

    def seal(self, data: bytes, context: bytes = b"") -> bytes:
        nonce = _new_nonce()
        sealed = self._ciphers[self._current].encrypt(nonce, data, self._current + context)
        return self._current + nonce + sealed

    def sealed_with_current(self, blob: bytes) -> bool:
        return blob[:KEY_ID_SIZE] == self._current

    def open(self, blob: bytes, context: bytes = b"") -> bytes:
        kid = bytes(blob[:KEY_ID_SIZE])
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PrivacyError(
                f"a record is sealed with key id {kid.hex()}, which is not in {KEYS_VAR}: "
                "put the key it was sealed with back at the end of the list (keys are only "
                "removed once every record was resealed or purged)"
            )
        nonce = blob[KEY_ID_SIZE : KEY_ID_SIZE + NONCE_SIZE]
        try:
            return cipher.decrypt(nonce, bytes(blob[KEY_ID_SIZE + NONCE_SIZE :]), kid + context)
        except InvalidTag as err:
            raise PrivacyError(
                f"a record sealed with key id {kid.hex()} does not open: it was altered or "
                "damaged (or belongs to another row); restore the store from a backup"
            ) from err

    def __repr__(self) -> str:
        return f"Sealer(current={self.current_id}, keys={len(self._ciphers)})"


# --------------------------------------------------------------------------- environment


def new_key() -> str:
    """A fresh key, base64: for HOTLINE_KEYS or HOTLINE_KEY_SECRET."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def _decode(value: str, var: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise PrivacyError(
            f"{var}: a key is not valid base64; make one with `hotline keygen`"
        ) from err


@dataclass(frozen=True, slots=True)
class Secrets:
    sealer: Sealer
    keys: SessionKeys


def keys_from_env(environ: Mapping[str, str]) -> Secrets:
    """The sealer and session keys from HOTLINE_KEYS and HOTLINE_KEY_SECRET, or a
    PrivacyError saying which variable is missing or wrong (never the value)."""
    raw = environ.get(KEYS_VAR, "").strip()
    if not raw:
        raise PrivacyError(
            f"{KEYS_VAR} is not set: the session store is encrypted and the bot will not "
            f"start without its key. Set {KEYS_VAR} to a key made with `hotline keygen` "
            "(for a new store), or to the keys this store was sealed with"
        )
    sealer = Sealer([_decode(part, KEYS_VAR) for part in raw.split(",") if part.strip()])
    secret = environ.get(SECRET_VAR, "").strip()
    if not secret:
        raise PrivacyError(
            f"{SECRET_VAR} is not set: session keys are an HMAC under this secret. Set it "
            "to a key made with `hotline keygen` (for a new store), or to the secret this "
            "store was created with"
        )
    decoded = _decode(secret, SECRET_VAR)
    if len(decoded) != KEY_SIZE:
        raise PrivacyError(f"{SECRET_VAR}: must be {KEY_SIZE} bytes, base64-encoded")
    return Secrets(sealer, SessionKeys(decoded))
