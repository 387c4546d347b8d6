"""Ed25519 signatures over canonical JSON: who decided, and that nobody changed it.

Approvers sign their decisions and budget extensions with their own key; workers sign
what they tell a user's ledger. Verifying is pure computation on bytes (no clock, no
I/O), so a workflow can check a signature deterministically against public keys that
were recorded in its history.
"""

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class SignatureError(ValueError):
    """A key or signature is malformed."""


def canonical(message: dict[str, Any]) -> bytes:
    """The bytes that are signed: JSON with sorted keys and no whitespace."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise SignatureError(f"{what} is not valid base64") from None


def new_private_key() -> str:
    """A fresh private key: the base64 of its 32-byte seed."""
    return _b64(Ed25519PrivateKey.generate().private_bytes_raw())


def public_key_of(private_key: str) -> str:
    """The base64 public key of a base64 private key."""
    raw = _private(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(raw)


def _private(private_key: str) -> Ed25519PrivateKey:
    seed = _unb64(private_key.strip(), "private key")
    if len(seed) != 32:
        raise SignatureError(f"private key has {len(seed)} bytes; Ed25519 needs 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def check_public_key(public_key: str) -> str:
    """``public_key`` if it is a well-formed Ed25519 public key, else `SignatureError`."""
    raw = _unb64(public_key.strip(), "public key")
    if len(raw) != 32:
        raise SignatureError(f"public key has {len(raw)} bytes; Ed25519 needs 32")
    return public_key.strip()


def sign(private_key: str, message: dict[str, Any]) -> str:
    """The base64 signature of ``message`` (canonical JSON) by ``private_key``."""
    return _b64(_private(private_key).sign(canonical(message)))


def verify(public_key: str, message: dict[str, Any], signature: str) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message``; never raises."""
    try:
        raw = base64.b64decode(public_key, validate=True)
        sig = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, canonical(message))
    except (ValueError, InvalidSignature):
        return False
    return True
