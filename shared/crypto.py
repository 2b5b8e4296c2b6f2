"""Authenticated encryption of personal data at rest (AES-256-GCM), with key ids so keys can be rotated.

A sealed value is `kid | 0x00 | nonce(12) | ciphertext+tag`. The key ring comes from settings
(`CANVASS_ENCRYPTION_KEY="kid:base64key[,kid:base64key...]"`): the first key seals, any listed key opens,
so rotating a key means putting the new one first and re-sealing at leisure. The associated data binds a
ciphertext to its row and column, so a value copied to another row does not decrypt.

`blind_index` gives a keyed hash for exact-match look-ups (an owner's email, to re-issue a credential) without
storing the value in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.settings import get_settings


def parse_key_ring(spec: str, setting: str = "CANVASS_ENCRYPTION_KEY") -> dict[str, bytes]:
    """The keys of a ring spec `kid:base64key[,kid:base64key...]`, in order (the first seals); a malformed spec
    is refused with a message naming the setting it came from, so a service refuses to start on it (settings
    validate every ring when they load) rather than failing at its first seal."""
    keys: dict[str, bytes] = {}
    for part in spec.split(","):
        kid, sep, b64 = part.strip().partition(":")
        if not sep or not kid.isalnum() or not kid.isascii():
            raise ValueError(f"{setting} must look like 'kid:base64key[,kid:base64key]' (kid alphanumeric)")
        if kid in keys:
            raise ValueError(f"{setting} names the key id {kid!r} twice")
        try:
            key = base64.b64decode(b64 + "=" * (-len(b64) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{setting}: key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"{setting}: key {kid!r} must be 32 bytes (it is {len(key)})")
        keys[kid] = key
    return keys


class KeyRing:
    def __init__(self, spec: str, setting: str = "CANVASS_ENCRYPTION_KEY") -> None:
        self.keys: dict[str, bytes] = parse_key_ring(spec, setting)
        self.current: str = next(iter(self.keys))
        # Built once per key: constructing AESGCM costs more than sealing a short value with it.
        self._ciphers: dict[str, AESGCM] = {kid: AESGCM(key) for kid, key in self.keys.items()}
        self._prefix = self.current.encode() + b"\x00"
        self._index_key = hashlib.sha256(b"blind-index:" + self.keys[self.current]).digest()
        self._index_keys = [hashlib.sha256(b"blind-index:" + key).digest() for key in self.keys.values()]

    def seal(self, plaintext: str | None, context: str) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        ct = self._ciphers[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return self._prefix + nonce + ct

    def open(self, sealed: bytes | None, context: str) -> str | None:
        if sealed is None:
            return None
        kid, _, rest = bytes(sealed).partition(b"\x00")
        cipher = self._ciphers.get(kid.decode())
        if cipher is None:
            raise KeyError(f"no key {kid.decode()!r} in the key ring")
        return cipher.decrypt(rest[:12], rest[12:], context.encode()).decode()

    def key_id(self, sealed: bytes | None) -> str | None:
        return bytes(sealed).partition(b"\x00")[0].decode() if sealed else None

    def blind_index(self, value: str) -> bytes:
        return hmac.new(self._index_key, value.strip().lower().encode(), hashlib.sha256).digest()

    def blind_indexes(self, value: str) -> list[bytes]:
        """The value's `blind_index` under every key of the ring, the current first: a look-up also finds rows
        indexed before a rotation (as long as the retired key stays in the ring)."""
        v = value.strip().lower().encode()
        return [hmac.new(key, v, hashlib.sha256).digest() for key in self._index_keys]

    def exact_index(self, value: str, context: str) -> bytes:
        """A keyed hash of the value exactly as given (case and spaces count), bound to a context, under the
        current key."""
        return self._exact(self._index_key, value, context)

    def exact_indexes(self, value: str, context: str) -> list[bytes]:
        """The value's `exact_index` under every key of the ring, the current first: what was stored before a
        rotation is still found (as long as the retired key stays in the ring)."""
        return [self._exact(key, value, context) for key in self._index_keys]

    @staticmethod
    def _exact(key: bytes, value: str, context: str) -> bytes:
        return hmac.new(key, context.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()


@lru_cache
def keyring() -> KeyRing:
    return KeyRing(get_settings().encryption_keys)
