"""The payload store encrypted at rest: same references, no plaintext on disk, and clear
errors for blobs it cannot read."""

from pathlib import Path

import pytest

from durable_agents._activities.payload_store import (
    SEALED_MAGIC,
    LocalPayloadStore,
    PayloadUnreadableError,
)
from durable_agents._infra.codec import Keyring, new_key, parse_keys

pytestmark = pytest.mark.unit

KEY_A, KEY_B = new_key(), new_key()
SECRET = ("tool output with SECRET-7f3a " * 300).encode()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_blobs_are_sealed_and_references_are_those_of_the_plaintext(tmp_path: Path) -> None:
    plain = LocalPayloadStore(tmp_path / "plain")
    sealed = LocalPayloadStore(tmp_path / "sealed", Keyring(parse_keys(f"a:{KEY_A}")))
    ref = sealed.put(SECRET, "preview")
    # The workflow computes keys itself and histories record them: they must not change.
    assert ref == plain.put(SECRET, "preview")
    (blob,) = _files(tmp_path / "sealed")
    assert blob.read_bytes().startswith(SEALED_MAGIC)
    assert b"SECRET-7f3a" not in blob.read_bytes()
    assert sealed.get(ref) == SECRET
    sealed.put(SECRET, "again")  # idempotent: a retried activity writes nothing new
    assert _files(tmp_path / "sealed") == [blob]


def test_rotated_keys_read_old_blobs_and_an_unknown_key_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "payloads"
    ref = LocalPayloadStore(root, Keyring(parse_keys(f"a:{KEY_A}"))).put(SECRET, "")
    rotated = LocalPayloadStore(root, Keyring(parse_keys(f"b:{KEY_B},a:{KEY_A}")))
    assert rotated.get(ref) == SECRET
    only_b = LocalPayloadStore(root, Keyring(parse_keys(f"b:{KEY_B}")))
    with pytest.raises(PayloadUnreadableError, match="key 'a', which is not in AGENT_CODEC_KEYS"):
        only_b.get(ref)
    without_keys = LocalPayloadStore(root)
    with pytest.raises(PayloadUnreadableError, match="encrypted with key 'a'; set AGENT_CODEC"):
        without_keys.get(ref)
    # Same id, another key: the ciphertext does not authenticate.
    impostor = LocalPayloadStore(root, Keyring(parse_keys(f"a:{KEY_B}")))
    with pytest.raises(PayloadUnreadableError, match="does not decrypt with key 'a'"):
        impostor.get(ref)


def test_tampered_blob_is_refused(tmp_path: Path) -> None:
    store = LocalPayloadStore(tmp_path, Keyring(parse_keys(f"a:{KEY_A}")))
    ref = store.put(SECRET, "")
    (blob,) = _files(tmp_path)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(PayloadUnreadableError, match="does not decrypt"):
        store.get(ref)
    blob.write_bytes(SEALED_MAGIC)
    with pytest.raises(PayloadUnreadableError, match="truncated"):
        store.get(ref)


def test_plaintext_blobs_stay_readable_and_are_encrypted_when_stored_again(
    tmp_path: Path,
) -> None:
    ref = LocalPayloadStore(tmp_path).put(SECRET, "")  # written before the keys were set
    (blob,) = _files(tmp_path)
    store = LocalPayloadStore(tmp_path, Keyring(parse_keys(f"a:{KEY_A}")))
    assert store.get(ref) == SECRET
    assert store.put(SECRET, "") == ref
    assert b"SECRET-7f3a" not in blob.read_bytes() and store.get(ref) == SECRET
    # A plaintext blob that does not match its name is not served.
    blob.write_bytes(b"something else")
    with pytest.raises(PayloadUnreadableError, match="does not match its digest"):
        store.get(ref)
