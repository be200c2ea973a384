"""The key check every encrypted store keeps: a canary sealed with the current key.

A store opened with keys that open nothing, or with another HMAC secret (nobody's session
would be found under its keys), is refused at once with a message saying what to set,
instead of failing on each person's next message.
"""

from __future__ import annotations

from engine.privacy import KEYS_VAR, SECRET_VAR, PrivacyError, Sealer

CANARY = b"hotline canary\0"
AAD = b"canary"


class CanaryError(RuntimeError):
    """The keys do not open the store; the message says what to set."""


def checked_canary(
    sealed: bytes | None, has_sessions: bool, sealer: Sealer, identity: bytes, where: str
) -> bytes | None:
    """Check the stored canary (`sealed`, None if there is none) against the keys; the
    canary to store (new, or resealed after a key rotation), or None if it is current.
    `identity` is the session keys' fingerprint, `where` names the store in errors."""
    expected = CANARY + identity
    if sealed is None:
        if has_sessions:
            raise CanaryError(f"{where}: the store's key check (canary) is missing")
        return sealer.seal(expected, AAD)
    try:
        found = sealer.open(sealed, AAD)
    except PrivacyError as err:
        raise CanaryError(
            f"{where}: {KEYS_VAR} does not open this session store (none of its keys is the "
            "one the store was sealed with). Set it to the keys in use when the store was "
            "last written, newest first; a new key goes in front of the old ones, never "
            "instead of them"
        ) from err
    if found != expected:
        raise CanaryError(
            f"{where}: {SECRET_VAR} differs from the one this store was created with: "
            "nobody's session would be found. Set it back to that secret"
        )
    return None if sealer.sealed_with_current(sealed) else sealer.seal(expected, AAD)
