"""Payloads a worker refused to decrypt, as the workflow code sees them.

With ``AGENT_CODEC_KEYS`` set, a worker's codec accepts only payloads encrypted with its
keys. It cannot raise on any other (an unencrypted signal sent with the ``temporal`` CLI,
a payload under an unknown key, corrupt ciphertext): a codec error while decoding a
workflow activation fails the workflow task, which Temporal retries forever, so one such
signal would wedge the run. Instead it hands the workflow this sentinel, a JSON object
with one key::

    {"__refused_payload__": "<why it was refused>"}

Workflow code refuses such a start input, signal or update with that reason:
`refused_reason` finds it in a decoded value (a dict, or a `RefusedPayload` when the
parameter is typed ``X | RefusedPayload``). Pure: no I/O, safe inside workflows.
"""

import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

REFUSED_PAYLOAD_KEY = "__refused_payload__"
"""The only key of the sentinel object a worker's codec puts in place of a refused payload."""


class RefusedPayload(BaseModel):
    """The sentinel as a model, for handler parameters typed ``Decision | RefusedPayload``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    reason: str = Field(alias=REFUSED_PAYLOAD_KEY)


def refused_reason(value: object) -> str | None:
    """Why the worker refused the payload ``value`` was decoded from; None if it did not."""
    if isinstance(value, RefusedPayload):
        return value.reason
    if isinstance(value, Mapping) and set(value) == {REFUSED_PAYLOAD_KEY}:
        reason = value[REFUSED_PAYLOAD_KEY]
        return reason if isinstance(reason, str) else "refused payload"
    return None


def refusal_json(reason: str) -> bytes:
    """The sentinel's JSON bytes (what the codec puts in a ``json/plain`` payload)."""
    return json.dumps({REFUSED_PAYLOAD_KEY: reason}, separators=(",", ":")).encode()
