"""What a run tells the people following it, as it happens: its event stream.

The workflow publishes its steps on its stream (plan, tasks, approvals, budget alerts,
model calls started and finished, with each answer's text and digest). A model call's
text *while it is written* does not go through the workflow: its activity heartbeats a
`TokenProgress` (the attempt's text so far) every 200 ms, which the server keeps with the
pending activity and never writes to the history; a client reads it with the run's
description and turns it into ``tokens`` events (``client/events.py``). So streaming
costs the history nothing beyond the answer itself.

A retried model call's partial text is *superseded*, not repeated: tokens carry the
attempt they belong to, a later attempt's text is preceded by a ``superseded`` event,
and `Transcript` (what clients apply) drops the text of every earlier attempt; the
run's ``call_finished`` names the answering attempt and carries the answer, so what a
person reads in the end is the final answer's text, each token once, even if what
streamed was cut, lost or forged (``verified`` says whether it matched).
"""

import hashlib
from enum import StrEnum

from pydantic import ConfigDict, Field

from durable_agents._domain.compact import CompactModel

# A batch larger than this is refused (a model activity sends a few hundred bytes at a time).
MAX_BATCH_CHARS = 64_000
# A model call streams at most this much of its text (each heartbeat carries all of it so
# far); the rest arrives with ``call_finished`` (or, past the payload store's inline
# limit, stays in the run's result, its preview shown).
MAX_STREAMED_CHARS = 32_000
# What marks heartbeat details as a model call's streamed text.
PROGRESS_FORMAT = "durable-agents/tokens-1"


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
    it (the workflow publishes without it); model text read live (``tokens``,
    ``superseded``) carries the offset of the stream event before it. Pass `cursor` back
    to resume after an event.
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
    # Of tokens: the attempt's text length up to and with this piece; of a finished call:
    # its answer's length (``text`` may be only a large answer's preview).
    end: int = 0

    def cursor(self) -> str:
        """Where to resume to get what follows this event and nothing before it (pass it
        as ``from_offset``): the next offset, and for tokens also how much of the call's
        text was seen (``offset:call:attempt:end``)."""
        if self.kind is EventKind.TOKENS and self.call_id:
            return f"{self.offset + 1}:{self.call_id}:{self.attempt}:{self.end}"
        return str(self.offset + 1)


class TokenProgress(CompactModel):
    """A model call's text so far, as its activity heartbeats it (``format`` marks it).

    The server keeps the latest with the pending activity and hands it out with the
    run's description: never in the history. It is only a preview of the answer (anyone
    who may heartbeat for the run could write one); ``call_finished`` has the answer.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    format: str = Field(pattern=f"^{PROGRESS_FORMAT}$")
    attempt: int = Field(ge=1)
    label: str = Field(default="", max_length=400)
    purpose: str = Field(default="", max_length=40)
    text: str = Field(default="", max_length=MAX_STREAMED_CHARS)
    capped: bool = False  # the limit was reached: the rest is only in the answer


class TokenBatch(CompactModel):
    """Text a model activity sent to its workflow with the ``stream_tokens`` update, before
    tokens went out as heartbeats (`TokenProgress`): taken again only when a run recorded
    then is replayed; the run refuses new ones.

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
    # What streamed live was the answer (None: nothing to check it against). False means
    # text that was not the answer's got in (forged by someone who may heartbeat for the
    # run, or garbled): ``text`` is then the run's own (the answer, or its preview).
    verified: bool | None = None


def text_digest(text: str) -> str:
    """The SHA-256 of ``text``'s UTF-8 bytes, hex: how ``call_finished`` names the answer."""
    return hashlib.sha256(text.encode()).hexdigest()


def _finish(call: CallText, event: RunEvent) -> None:
    """``call_finished``: the answering attempt's text, checked against its digest."""
    call.finished, call.failed = True, event.outcome == "failed"
    if event.attempt and event.attempt != call.attempt:  # streamed text of another attempt
        call.attempt, call.text, call.capped = event.attempt, "", False
    if event.text and (not event.sha256 or text_digest(event.text) == event.sha256):
        # The answer itself: it replaces what streamed, which should have been its start.
        if call.text:
            call.verified = event.text.startswith(call.text)
        call.text, call.capped = event.text, False
    elif not event.sha256:
        return
    elif call.text and (not event.end or len(call.text) == event.end) and not call.capped:
        call.verified = text_digest(call.text) == event.sha256  # the whole answer streamed
        if not call.verified and event.text:  # it did not: show the run's preview instead
            call.text, call.capped = event.text, True
    elif call.text:
        call.capped = True  # part of a large answer streamed: the rest is in the result
    elif event.text:
        call.text, call.capped = event.text, True  # a large answer's preview


class Transcript:
    """Applies a run's events in order: what a person following the run should see.

    Tokens of an attempt older than the latest one seen for their call are dropped; a
    ``superseded`` event (or the first tokens of a later attempt) clears the text shown
    so far for that call; ``call_finished`` names the attempt whose answer counted and
    carries its text, which replaces what streamed (``verified``: the streamed text was
    its start); an answer past the payload store's inline limit comes as a preview and
    its digest, against which text streamed whole is checked.
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
