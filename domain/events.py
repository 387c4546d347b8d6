"""What a run tells the people following it, as it happens: its event stream.

The workflow publishes every `RunEvent` (steps, approvals, budget alerts, model tokens) on
its stream; activities never publish there directly. A model activity sends its tokens
to the workflow as a `TokenBatch` naming the call, the attempt and the key the workflow
gave that call; the workflow checks all three and re-publishes the text as a ``tokens``
event (see ``workflows/run_events.py``).

A retried model call's partial text is *superseded*, not repeated: the first batch of a
later attempt is preceded by a ``superseded`` event, and `Transcript` (what clients
apply) drops the text of every earlier attempt, so what a person reads is the final
answer's text, each token once.
"""

import hashlib
from enum import StrEnum

from pydantic import ConfigDict, Field

from durable_agents._domain.compact import CompactModel

# A batch larger than this is refused (a model activity sends a few hundred bytes at a time).
MAX_BATCH_CHARS = 64_000


class EventKind(StrEnum):
    """What happened."""

    PLAN_MADE = "plan_made"
    REPLAN = "replan"
    TASK_STARTED = "task_started"
    TASK_FINISHED = "task_finished"
    APPROVAL_ASKED = "approval_asked"
    APPROVAL_DECIDED = "approval_decided"
    BUDGET_ALERT = "budget_alert"
    CALL_STARTED = "call_started"
    TOKENS = "tokens"
    SUPERSEDED = "superseded"
    CALL_FINISHED = "call_finished"
    CONTINUED_AS_NEW = "continued_as_new"
    RUN_FINISHED = "run_finished"


class RunEvent(CompactModel):
    """One event of a run's stream; fields at their default are left out of the JSON.

    ``offset`` is the event's position in the stream, filled in by the client that read
    it (the workflow publishes without it); pass it back to resume after it.
    """

    # Fields a newer worker adds are ignored, so older clients keep reading its runs.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    always_shown = frozenset({"kind"})

    kind: EventKind
    offset: int = 0
    iteration: int = 0
    task_id: str = ""
    label: str = ""
    outcome: str = ""
    status: str = ""
    detail: str = ""
    cost_micros: int = 0
    tokens: int = 0
    approval_id: str = ""
    call_id: str = ""
    purpose: str = ""  # of a model call: plan, evaluate, summarize...
    attempt: int = 0
    text: str = ""
    sha256: str = ""  # of a finished call's answer: the streamed text must have it


class TokenBatch(CompactModel):
    """Text a model activity received, sent to its workflow (never to clients as is).

    ``key`` is the one the workflow put in the call's input: a batch without it is not
    the run's. ``seq`` counts the batches of one attempt from 1, so a batch delivered
    twice is taken once.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    call_id: str = Field(min_length=1, max_length=200)
    attempt: int = Field(ge=1)
    seq: int = Field(ge=1)
    key: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=MAX_BATCH_CHARS)
    capped: bool = False  # the last batch: the rest of the reply is only in the result


class CallText(CompactModel):
    """The text of one model call as a client has it: the latest attempt's only."""

    label: str = ""
    purpose: str = ""
    attempt: int = 0
    text: str = ""
    finished: bool = False
    failed: bool = False
    capped: bool = False  # streamed up to the worker's limit; the rest is in the result
    # The streamed text has the answer's digest (None: nothing to check it against). False
    # means text that was not the answer's got in: forged by someone holding the call's
    # key, or lost; the answer itself is in the run's result.
    verified: bool | None = None


def text_digest(text: str) -> str:
    """The SHA-256 of ``text``'s UTF-8 bytes, hex: how ``call_finished`` names the answer."""
    return hashlib.sha256(text.encode()).hexdigest()


def _finish(call: CallText, event: RunEvent) -> None:
    """``call_finished``: the answering attempt's text, checked against its digest."""
    call.finished, call.failed = True, event.outcome == "failed"
    if event.attempt and event.attempt != call.attempt:  # streamed text of another attempt
        call.attempt, call.text, call.capped = event.attempt, "", False
    if event.text:  # the answer, when its attempt streamed none of it
        call.text = event.text
    elif event.sha256 and not call.capped:
        call.verified = text_digest(call.text) == event.sha256


class Transcript:
    """Applies a run's events in order: what a person following the run should see.

    Tokens of an attempt older than the latest one seen for their call are dropped; a
    ``superseded`` event (or the first tokens of a later attempt) clears the text shown
    so far for that call; ``call_finished`` names the attempt whose answer counted, and
    carries its text when that attempt streamed none (a reply complete within the
    sender's first interval; a large one is then its preview).
    """

    def __init__(self) -> None:
        self.calls: dict[str, CallText] = {}

    def apply(self, event: RunEvent) -> CallText | None:
        """Take ``event``; the call it changed, if it is about a model call."""
        if not event.call_id:
            return None
        call = self.calls.setdefault(
            event.call_id, CallText(label=event.label, purpose=event.purpose)
        )
        if event.kind is EventKind.CALL_FINISHED:
            _finish(call, event)  # the run's word on the call: it names the attempt
            return call
        if event.attempt and event.attempt < call.attempt:
            return call  # a late batch of an attempt already superseded
        if event.attempt > call.attempt:
            call.attempt, call.text = event.attempt, ""
        if event.kind is EventKind.TOKENS:
            call.text += event.text
            call.capped = call.capped or event.outcome == "capped"
        return call

    def text_of(self, call_id: str) -> str:
        """The text of ``call_id`` so far (the latest attempt's)."""
        call = self.calls.get(call_id)
        return call.text if call else ""
