"""What a user's ledger checks before it takes a message: shape, signer, freshness."""

from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from durable_agents._domain.signatures import verify
from durable_agents._domain.user_ledger import MESSAGE_TTL_S, LedgerAdjustment, Signed, UserSpend
from durable_agents._workflows.payloads import MalformedPayload, parse_payload

M = TypeVar("M", bound=BaseModel)


class LedgerRefusedError(ApplicationError):
    """A ledger message refused; the caller (or the audit trail) gets the reason."""

    def __init__(self, why: str) -> None:
        super().__init__(why, type="LedgerRefused", non_retryable=True)


def parse_message(model: type[M], raw: Any) -> M:
    """``raw`` as ``model``, or `LedgerRefusedError` naming what is wrong."""
    try:
        return parse_payload(model, raw, "ledger message")
    except MalformedPayload as err:
        raise LedgerRefusedError(str(err)) from None


def check_signed(state: UserSpend, op: str, ledger_id: str, message: Signed, now: datetime) -> None:
    """Refuse a message not signed by a worker (an operator, for adjustments) or stale."""
    if message.signature is None or message.issued_at is None:
        raise _refuse(op, "unsigned: only a run's worker (or an operator) may change a ledger")
    age = now - message.issued_at
    if abs(age) > timedelta(seconds=MESSAGE_TTL_S):
        raise _refuse(op, f"the message was signed {age.total_seconds():.0f} s ago; too old")
    signed = message.message(op, ledger_id)
    if isinstance(message, LedgerAdjustment):
        key = state.operator_keys.get(message.operator)
        if key is None:
            raise _refuse(
                op,
                f"'{message.operator}' is not an operator with a key on the workers "
                "(AGENT_APPROVER_KEYS_FILE)",
            )
        if not verify(key, signed, message.signature):
            raise _refuse(op, f"the signature is not {message.operator}'s")
        return
    if not any(verify(k, signed, message.signature) for k in state.worker_keys):
        raise _refuse(op, "the signature is not a worker's")


def _refuse(op: str, why: str) -> LedgerRefusedError:
    workflow.logger.warning("ledger message refused", extra={"op": op, "why": why})
    return LedgerRefusedError(why)
