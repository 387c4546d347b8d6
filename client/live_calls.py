"""Model calls' text while they are written, read from the run's pending activities.

A streaming model activity heartbeats its attempt's text so far (`TokenProgress`); the
server hands the latest out with the run's description, and writes none of it to the
history. `LiveCalls` keeps, per call in flight, which attempt and how much of its text a
reader has been given, and turns each new description into events: ``superseded`` when
a later attempt began (the pending activity's attempt, even before its first beat),
then ``tokens`` with the text past what was given. Text that does not continue what was
given (a forged or confused heartbeat) is not given; ``call_finished`` carries the
answer either way. Details that are not a `TokenProgress` (another activity's, or one
the codec refuses) are skipped.
"""

from dataclasses import dataclass

from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client

from durable_agents._domain import contract
from durable_agents._domain.events import EventKind, RunEvent, TokenProgress

_UNREADABLE = (ValueError, TypeError, KeyError, RuntimeError)
# The kinds of events read live from the run's description, not from its stream: they
# carry the offset of the stream event before them.
LIVE_KINDS = frozenset({EventKind.TOKENS, EventKind.SUPERSEDED})


@dataclass
class _Call:
    label: str = ""
    purpose: str = ""
    attempt: int = 0
    text: str = ""  # of ``attempt``, as given to the reader
    capped: bool = False


@dataclass
class Resume:
    """A cursor's hint: of call ``call_id``'s attempt ``attempt``, ``chars`` were seen."""

    call_id: str
    attempt: int
    chars: int


class LiveCalls:
    """The text of one run's calls in flight, for one reader."""

    def __init__(self, temporal: Client, resume: Resume | None) -> None:
        self._temporal = temporal
        self._calls: dict[str, _Call] = {}
        self._finished: set[str] = set()
        self._resume = resume
        self.model_call_pending = False  # in the last description: a model call in flight

    def saw(self, event: RunEvent) -> None:
        """Follow the run's own events: calls begin and end."""
        if event.kind is EventKind.CALL_STARTED and event.call_id not in self._finished:
            self._calls.setdefault(event.call_id, _Call(event.label, event.purpose))
        elif event.kind is EventKind.CALL_FINISHED:
            self._calls.pop(event.call_id, None)
            self._finished.add(event.call_id)

    async def take(
        self, described: DescribeWorkflowExecutionResponse, offset: int, *, caught_up: bool
    ) -> list[RunEvent]:
        """New text of the calls in flight, as events at ``offset`` (the last one read).
        A reader that has ``caught_up`` also takes model calls it has not seen begin (it
        resumed after their ``call_started``), once they have heartbeated."""
        self.model_call_pending = any(
            p.activity_type.name in contract.MODEL_ACTIVITIES for p in described.pending_activities
        )
        events: list[RunEvent] = []
        for pending in described.pending_activities:
            known = pending.activity_id in self._calls
            if not known and not (caught_up and self._unseen_call(pending)):
                continue
            progress = await self._progress(pending)
            if not known and progress is None:
                continue  # looked at again next time
            call = self._calls.setdefault(pending.activity_id, self._first(pending, progress))
            events += _news(pending, call, progress, offset)
        return events

    def _unseen_call(self, pending: PendingActivityInfo) -> bool:
        """A model call in flight this reader has not seen begin (nor end)."""
        model_call = pending.activity_type.name in contract.MODEL_ACTIVITIES
        return model_call and pending.activity_id not in self._finished

    def _first(self, pending: PendingActivityInfo, progress: TokenProgress | None) -> _Call:
        """A call found streaming when the reader came: what a cursor says was seen."""
        call = _Call(progress.label, progress.purpose) if progress else _Call()
        hint = self._resume
        where = (pending.activity_id, progress.attempt if progress else 0)
        if hint and progress and (hint.call_id, hint.attempt) == where:
            call.attempt, call.text = hint.attempt, progress.text[: hint.chars]
        return call

    async def _progress(self, pending: PendingActivityInfo) -> TokenProgress | None:
        payloads = list(pending.heartbeat_details.payloads)
        if len(payloads) != 1:
            return None
        try:
            decoded = await self._temporal.data_converter.decode(payloads, [TokenProgress])
            return TokenProgress.model_validate(decoded[0])
        except _UNREADABLE:
            return None


def _news(
    pending: PendingActivityInfo, call: _Call, progress: TokenProgress | None, offset: int
) -> list[RunEvent]:
    """``superseded`` if a later attempt began, then the text past what was given."""
    events: list[RunEvent] = []
    base = {"call_id": pending.activity_id, "label": call.label, "purpose": call.purpose}
    latest = max(pending.attempt, progress.attempt if progress else 0)
    if call.attempt and latest > call.attempt:
        events.append(
            RunEvent(
                kind=EventKind.SUPERSEDED,
                offset=offset,
                attempt=latest,
                detail=f"attempt {call.attempt} replaced by attempt {latest}",
                **base,
            )
        )
    if latest > call.attempt:
        call.attempt, call.text, call.capped = latest, "", False
    if progress is None or progress.attempt != call.attempt:
        return events
    if not progress.text.startswith(call.text):
        return events  # not a continuation of what was given: call_finished settles it
    new = progress.text[len(call.text) :]
    capped = progress.capped and not call.capped
    if new or capped:
        call.text, call.capped = progress.text, progress.capped
        events.append(
            RunEvent(
                kind=EventKind.TOKENS,
                offset=offset,
                attempt=call.attempt,
                text=new,
                end=len(call.text),
                outcome="capped" if capped else "",
                **base,
            )
        )
    return events
