"""Payloads a worker refused to decode (unencrypted where keys are required, or unreadable).

A worker's codec must never raise while decoding a workflow activation: the workflow task
would fail and be retried forever, wedging the run on one bad message. It decodes such
a payload into ``{REFUSED_KEY: reason}`` instead, and the run refuses it with the reason.
"""

REFUSED_KEY = "__refused_payload__"


def refused_reason(value: object) -> str | None:
    """The reason a payload was refused, or None for an ordinary value."""
    reason = value.get(REFUSED_KEY) if isinstance(value, dict) else None
    return reason if isinstance(reason, str) else None
