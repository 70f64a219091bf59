"""Encryption at rest for personal identifiers (ID numbers, names, phones) and their blind index.

Pure functions, no models. Two independent keys come from the environment through settings:

* ``FIELD_ENCRYPTION_KEYS = "k2:<key>,k1:<key>"`` — AES-256-GCM keys with a key id. The first
  key encrypts; every listed key decrypts, so keys rotate by putting a new key first, running
  the re-encryption command (``reencrypt_token``), then dropping the old key.
* ``BLIND_INDEX_KEY = "<key>"`` — HMAC-SHA256 key for the exact-lookup index. It is separate
  so that the index (which must stay stable) never shares a key with the ciphertexts.

Each key is 32 random bytes, URL-safe base64 (padding optional), e.g.
``python -c "import secrets; print(secrets.token_urlsafe(32))"``.

Token format (ASCII, safe in any text column): ``v1.<kid>.<b64url(nonce || ciphertext || tag)>``
with a random 96-bit nonce and no base64 padding. The ``aad`` argument names the place the
value belongs to (the model field uses ``"<app_label>.<model>.<attname>"``): a token copied into
another column, table or context fails authentication instead of decrypting. The token header
(version and key id) is authenticated too.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "CipherError",
    "blind_index",
    "current_key_id",
    "decrypt",
    "encrypt",
    "reencrypt_token",
    "reload_keys",
    "token_key_id",
]

TOKEN_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
DOMAIN_SEPARATOR = "\x1f"  # ASCII unit separator, between the blind-index domain and the value

# Key ids end up in every token and in log lines: keep them short, ASCII and free of the
# token's separator "." and the setting's separator ","; no "_" or "%" either, so that a SQL
# LIKE 'v1.<kid>.%' prefix (key rotation) needs no escaping.
_KEY_ID_RE = re.compile(r"[A-Za-z0-9-]{1,32}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_SETTINGS = frozenset({"FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"})


class CipherError(Exception):
    """A token could not be decrypted: malformed, unknown key id, or failed authentication
    (tampered, wrong key, or copied from another context)."""


# --- Keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyRing:
    current_kid: str
    ciphers: dict[str, AESGCM]
    blind_index_key: bytes


def _decode_key(text: str, *, what: str) -> bytes:
    """Strict URL-safe base64 (padding optional) of exactly 32 bytes. Never echoes the key."""
    text = text.strip()
    unpadded = text.rstrip("=")
    if not text or not _B64URL_RE.fullmatch(unpadded) or len(text) - len(unpadded) > 2:
        raise ImproperlyConfigured(
            f"{what} is not URL-safe base64 (expected 32 random bytes, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
        )
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{what} is not valid URL-safe base64.") from None
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"{what} decodes to {len(raw)} bytes; AES-256 and HMAC-SHA256 keys here must be "
            f"exactly {KEY_BYTES} random bytes."
        )
    return raw


def _parse_encryption_keys(value: object) -> dict[str, bytes]:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ImproperlyConfigured(
            'FIELD_ENCRYPTION_KEYS is not set. Expected "kid:base64key[,kid:base64key...]"; '
            "the first key encrypts, all keys decrypt."
        )
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            'FIELD_ENCRYPTION_KEYS must be a string "kid:base64key[,kid:base64key...]", '
            f"not {type(value).__name__}."
        )
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry {position} is empty (stray comma?)."
            )
        kid, colon, key_text = entry.partition(":")
        kid = kid.strip()
        if not colon:
            # Don't echo the entry: it is most likely a bare key.
            raise ImproperlyConfigured(
                f'FIELD_ENCRYPTION_KEYS entry {position} is not of the form "kid:base64key" '
                "(a key id may not contain ',' or '.')."
            )
        if not _KEY_ID_RE.fullmatch(kid):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry {position} has an invalid key id {kid!r}: use 1-32 "
                "characters from A-Z a-z 0-9 - (no '.' or ',', which separate tokens and keys)."
            )
        if kid in keys:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS lists key id {kid!r} twice; each key id must be unique "
                "or tokens would be ambiguous."
            )
        keys[kid] = _decode_key(
            key_text, what=f"FIELD_ENCRYPTION_KEYS key {kid!r} (entry {position})"
        )
    return keys


def _parse_blind_index_key(value: object) -> bytes:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ImproperlyConfigured(
            "BLIND_INDEX_KEY is not set. Expected URL-safe base64 of 32 random bytes, separate "
            "from the encryption keys."
        )
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"BLIND_INDEX_KEY must be a string, not {type(value).__name__}.")
    return _decode_key(value, what="BLIND_INDEX_KEY")


@lru_cache(maxsize=1)
def _keyring() -> _KeyRing:
    keys = _parse_encryption_keys(getattr(settings, "FIELD_ENCRYPTION_KEYS", None))
    blind_key = _parse_blind_index_key(getattr(settings, "BLIND_INDEX_KEY", None))
    if any(hmac.compare_digest(blind_key, key) for key in keys.values()):
        raise ImproperlyConfigured(
            "BLIND_INDEX_KEY must differ from every key in FIELD_ENCRYPTION_KEYS."
        )
    return _KeyRing(
        current_kid=next(iter(keys)),
        ciphers={kid: AESGCM(key) for kid, key in keys.items()},
        blind_index_key=blind_key,
    )


def reload_keys() -> None:
    """Forget the parsed keys; the next call reads the settings again."""
    _keyring.cache_clear()


@receiver(setting_changed, dispatch_uid="registry.crypto.reload_keys")
def _reload_on_setting_changed(*, setting: str, **kwargs: object) -> None:
    # override_settings / pytest-django's `settings` fixture send this on enter and exit.
    if setting in _SETTINGS:
        reload_keys()


@checks.register(checks.Tags.security)
def check_encryption_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Fail `manage.py check` (and start-up) on a bad key configuration, not the first request."""
    try:
        _keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="registry.crypto.E001")]
    return []


def current_key_id() -> str:
    """The key id new tokens are encrypted with (the first in FIELD_ENCRYPTION_KEYS)."""
    return _keyring().current_kid


# --- Tokens ---------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _header(kid: str) -> str:
    return f"{TOKEN_VERSION}.{kid}."


def _associated_data(kid: str, aad: str) -> bytes:
    # The header is authenticated with the caller's context; "." can't occur in a key id, so
    # the concatenation is unambiguous.
    return (_header(kid) + aad).encode("utf-8")


def _check_aad(aad: object) -> str:
    if not isinstance(aad, str) or not aad:
        raise ValueError("aad must be a non-empty string naming where the value is stored.")
    return aad


def _parse(token: object) -> tuple[str, bytes]:
    """(kid, nonce || ciphertext || tag) of a well-formed token, else CipherError."""
    if not isinstance(token, str):
        raise CipherError(f"Malformed token: expected str, got {type(token).__name__}.")
    parts = token.split(".")
    if len(parts) != 3:
        raise CipherError("Malformed token: expected 'v1.<kid>.<payload>'.")
    version, kid, payload = parts
    if version != TOKEN_VERSION:
        raise CipherError(f"Unsupported token version {version[:8]!r}.")
    if not _KEY_ID_RE.fullmatch(kid):
        raise CipherError("Malformed token: invalid key id.")
    if not _B64URL_RE.fullmatch(payload) or len(payload) % 4 == 1:
        raise CipherError("Malformed token: payload is not unpadded URL-safe base64.")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    # Base64 ignores the spare low bits of the last character; refuse non-canonical spellings
    # so that one ciphertext has exactly one token.
    if _b64encode(raw) != payload:
        raise CipherError("Malformed token: non-canonical base64 payload.")
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise CipherError("Malformed token: payload too short.")
    return kid, raw


def encrypt(plaintext: str, *, aad: str) -> str:
    """AES-256-GCM under the current key with a fresh random nonce; returns an ASCII token."""
    if not isinstance(plaintext, str):
        raise TypeError(f"plaintext must be str, not {type(plaintext).__name__}.")
    aad = _check_aad(aad)
    ring = _keyring()
    kid = ring.current_kid
    nonce = os.urandom(NONCE_BYTES)
    sealed = ring.ciphers[kid].encrypt(nonce, plaintext.encode("utf-8"), _associated_data(kid, aad))
    return _header(kid) + _b64encode(nonce + sealed)


def decrypt(token: str, *, aad: str) -> str:
    """Plaintext of a token made by `encrypt` with the same aad, under any configured key."""
    aad = _check_aad(aad)
    kid, raw = _parse(token)
    cipher = _keyring().ciphers.get(kid)
    if cipher is None:
        raise CipherError(
            f"Unknown key id {kid!r}: it is not in FIELD_ENCRYPTION_KEYS (removed too early?)."
        )
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    try:
        data = cipher.decrypt(nonce, sealed, _associated_data(kid, aad))
    except InvalidTag:
        raise CipherError(
            f"Token failed authentication for {aad!r}: tampered, wrong key, or copied from "
            "another column."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # only possible if someone else encrypted non-UTF-8 bytes
        raise CipherError("Decrypted value is not UTF-8.") from None


def token_key_id(token: str) -> str:
    """The key id a token was encrypted with (no decryption; CipherError if malformed)."""
    return _parse(token)[0]


def reencrypt_token(token: str, *, aad: str) -> str:
    """Move a token to the current key. A token already on it is verified and returned as is,
    so running a rotation twice changes nothing."""
    plaintext = decrypt(token, aad=aad)
    if token_key_id(token) == current_key_id():
        return token
    return encrypt(plaintext, aad=aad)


# --- Blind index ----------------------------------------------------------------------------


def blind_index(value: str, *, domain: str) -> str:
    """Hex HMAC-SHA256 of ``domain \\x1f value`` under BLIND_INDEX_KEY.

    `value` must already be normalised by the caller (the index is exact-match only). `domain`
    keeps uses apart, e.g. ``"id:RIC"`` vs ``"phone"``: the same string in two domains gives
    unrelated digests.
    """
    if not isinstance(value, str):
        raise TypeError(f"value must be str, not {type(value).__name__}.")
    if not isinstance(domain, str) or not domain or DOMAIN_SEPARATOR in domain:
        raise ValueError("domain must be a non-empty string without the \\x1f separator.")
    message = f"{domain}{DOMAIN_SEPARATOR}{value}".encode()
    return hmac.new(_keyring().blind_index_key, message, hashlib.sha256).hexdigest()
