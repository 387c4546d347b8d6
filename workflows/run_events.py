"""The run's event stream: the run alone publishes on it.

Built on the SDK's Workflow Streams (`WorkflowStream`: an offset-addressed log). Clients
read it with the stream's poll query, which writes nothing to the history; the run
refuses the stream's poll update (see ``client/events.py``). The stream's publish signal
is open to anyone who can reach the frontend, so the run replaces its handler with one
that refuses everything. Everything a client reads here was published by the run.

A model call's text while it is written is not on this stream: the model activity
heartbeats it (`TokenProgress`, no history) and clients read it from the run's
description. The run publishes ``call_started`` and ``call_finished``, which names the
attempt that answered and carries the answer's text and digest, so a client applying
`Transcript` shows the final text once whatever was retried, killed or forged.

Runs recorded before that took token batches with the ``stream_tokens`` update (checked:
a call in flight, the key the run put in its input, its latest attempt, once) and
published them as ``tokens`` events; the handler stays so their histories replay, and
its validator now refuses every new batch (a refused update writes nothing).
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.contrib.workflow_streams import PollInput, WorkflowStream, WorkflowStreamState
from temporalio.exceptions import ApplicationError

from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalRequest, ApprovalState
from durable_agents._domain.events import EventKind, RunEvent, TokenBatch

# Events a continued run keeps from the one before: enough for a client that was a poll
# behind when the run continued; one further behind resumes at the first event kept.
CARRIED_EVENTS = 64
_STATE = TypeAdapter(WorkflowStreamState)


class TokensRefusedError(Exception):
    """A token batch the run does not take; the message says why."""


@dataclass
class _OpenCall:
    key: str
    label: str
    attempt: int = 0
    seq: int = 0
    chars: int = 0  # of the attempt's text taken


def prior_stream_state(inputs: tuple[Any, ...]) -> WorkflowStreamState | None:
    """The stream a continued run inherits (only a run that continued as new has one)."""
    if workflow.info().continued_run_id is None or len(inputs) != 2:
        return None
    carry = inputs[1]
    raw = carry.get("stream_state") if isinstance(carry, dict) else None
    try:
        return _STATE.validate_python(raw) if isinstance(raw, dict) else None
    except ValidationError:
        return None


class RunEvents:
    """Publishes the run's events and takes its model calls' tokens."""

    def __init__(self, stream: WorkflowStream) -> None:
        self._stream = stream
        self._topic = stream.topic(contract.EVENTS_TOPIC, type=RunEvent)
        self._calls: dict[str, _OpenCall] = {}
        self._announced: dict[str, ApprovalState] = {}
        self.refused = 0
        # Token batches this execution took (each an update the server counts against its
        # per-execution total), and how many it takes before refusing the rest (set from
        # the run's ``LoopLimits.token_batches_per_execution`` when it begins).
        self.batches_taken = 0
        self.batch_budget = 0
        workflow.set_signal_handler(contract.STREAM_PUBLISH, self._refuse_publish)
        # Clients read with the poll query. The poll update (same handler, so histories
        # with accepted polls replay alike) is refused: it would write each answer to the
        # history and take room the server keeps for updates such as approvals.
        poll = workflow.get_update_handler(contract.STREAM_POLL)
        workflow.set_update_handler(contract.STREAM_POLL, poll, validator=self._refuse_poll)

    def publish(self, kind: EventKind, **fields: Any) -> None:
        """Append one event for every client following the run."""
        self._topic.publish(RunEvent(kind=kind, **fields))

    # -- model calls ---------------------------------------------------------------------

    def open_call(self, call_id: str, label: str, purpose: str) -> str:
        """Register a model call about to start; the key its token batches must carry."""
        key = str(workflow.uuid4())
        self._calls[call_id] = _OpenCall(key=key, label=label)
        self.publish(EventKind.CALL_STARTED, call_id=call_id, label=label, purpose=purpose)
        return key

    def close_call(
        self,
        call_id: str,
        *,
        attempt: int,
        text: str = "",
        sha256: str = "",
        chars: int = 0,
        failed: bool = False,
    ) -> None:
        """The call ended. ``text`` (the answer, or a large one's preview), ``sha256`` and
        ``chars`` (the whole answer's digest and length) are published with it; ``text``
        is left out only when a run recorded before heartbeat streaming took the
        answering attempt's batches."""
        opened = self._calls.pop(call_id, None)
        streamed = opened is not None and opened.attempt == attempt and opened.chars > 0
        if self.batches_taken >= self.batch_budget:  # its batches may have been refused
            streamed = False  # (then the text arrives whole here)
        self.publish(
            EventKind.CALL_FINISHED,
            call_id=call_id,
            attempt=attempt,
            label=opened.label if opened else "",
            outcome="failed" if failed else "ok",
            text="" if streamed or failed else text,
            sha256=sha256,
            end=chars,
        )

    def _refuse_publish(self, *_args: Any) -> None:
        """The stream's publish signal: nobody publishes on the run's stream but the run."""
        self.refused += 1
        workflow.logger.warning("refused a publish to the run's event stream (signal)")

    def _refuse_poll(self, _poll: PollInput) -> None:
        """The stream's poll update: refused (nothing is written); read with the query."""
        raise ApplicationError(
            "poll this run's events with the query of the same name, not an update",
            type="PollRefused",
            non_retryable=True,
        )

    def check(self, raw: Any) -> TokenBatch:
        """``raw`` as a batch the run takes, or `TokensRefusedError` saying why not."""
        try:
            batch = TokenBatch.model_validate(raw)
        except ValidationError as err:
            raise TokensRefusedError(f"not a token batch: {err.error_count()} problem(s)") from None
        call = self._calls.get(batch.call_id)
        if call is None:
            raise TokensRefusedError(f"no model call {batch.call_id!r} is in flight")
        if batch.key != call.key:
            raise TokensRefusedError(f"wrong key for model call {batch.call_id!r}")
        if batch.attempt < call.attempt:
            raise TokensRefusedError(
                f"attempt {batch.attempt} of {batch.call_id!r} was superseded by {call.attempt}"
            )
        return batch

    def take(self, batch: TokenBatch) -> None:
        """Publish a checked batch (once: a batch delivered twice is taken once)."""
        call = self._calls[batch.call_id]
        if batch.attempt > call.attempt:
            if call.attempt:
                self.publish(
                    EventKind.SUPERSEDED,
                    call_id=batch.call_id,
                    attempt=batch.attempt,
                    label=call.label,
                    detail=f"attempt {call.attempt} replaced by attempt {batch.attempt}",
                )
            call.attempt, call.seq, call.chars = batch.attempt, 0, 0
        if batch.seq <= call.seq:
            return
        call.seq = batch.seq
        call.chars += len(batch.text)
        if batch.text or batch.capped:
            self.publish(
                EventKind.TOKENS,
                call_id=batch.call_id,
                attempt=batch.attempt,
                label=call.label,
                text=batch.text,
                outcome="capped" if batch.capped else "",
            )

    # -- approvals -------------------------------------------------------------------------

    def approvals(self, requests: list[ApprovalRequest], *, announce: bool = True) -> None:
        """Announce requests asked or decided since the last call (``announce=False``:
        only note them, for a run that continued with requests announced before)."""
        for r in requests:
            seen = self._announced.get(r.id)
            self._announced[r.id] = r.state
            if not announce or seen is r.state:
                continue
            kind = (
                EventKind.APPROVAL_ASKED
                if r.state is ApprovalState.PENDING
                else EventKind.APPROVAL_DECIDED
            )
            self.publish(
                kind,
                approval_id=r.id,
                label=r.what,
                status=r.state.value,
                detail=r.why if kind is EventKind.APPROVAL_ASKED else r.reason or "",
            )

    # -- ending and continuing -------------------------------------------------------------

    def detach(self) -> None:
        """Release the clients waiting on this execution (it is about to end or continue)."""
        self._stream.detach_pollers()

    def carried(self) -> dict[str, Any]:
        """The stream's offset and last events, for the next execution."""
        state = self._stream.get_state(publisher_ttl=timedelta(0))
        kept = state.log[-CARRIED_EVENTS:]
        state.base_offset += len(state.log) - len(kept)
        state.log = kept
        dumped: dict[str, Any] = _STATE.dump_python(state, mode="json")
        return dumped
