"""Sending a model call's tokens to its run as they arrive, in batches.

The model client hands over text piece by piece; `TokenSender` gathers it and sends one
`TokenBatch` per ``interval`` with the run's ``stream_tokens`` update. A reply complete
within the first interval is not streamed: the run publishes its text from the result,
so a fast call costs no extra round trip. The run checks each batch (see
``workflows/run_events.py``) and publishes its text on its event stream. An update, not
the stream's publish signal: the run can refuse it without writing anything, and the
server caps signals at 64 per execution.

Streaming is best effort: a batch the run refuses (the call is no longer in flight) or
cannot be sent for `_GIVE_UP` stops the streaming of this attempt, never the model call.
A batch that failed for a passing reason is sent again (same ``seq``: taken once).
"""

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Self

from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._domain import contract
from durable_agents._domain.events import MAX_BATCH_CHARS, TokenBatch

# How long text waits to be sent: the latency it adds, against one update per interval.
DEFAULT_INTERVAL = timedelta(milliseconds=200)
# A batch that cannot be delivered for this long is given up (the call goes on).
_GIVE_UP_S = 20.0
# Answers after which sending again cannot help (the run has ended, or refuses us).
_FINAL = frozenset(
    {
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.INVALID_ARGUMENT,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.PERMISSION_DENIED,
    }
)


class TokenSender:
    """Batches one activity attempt's text to its run; use ``async with``."""

    def __init__(self, key: str, max_chars: int, interval: timedelta = DEFAULT_INTERVAL) -> None:
        info = activity.info()
        assert info.workflow_id is not None, "model calls run for a workflow"
        self._key = key
        self._call_id = info.activity_id
        self._attempt = info.attempt
        self._interval = interval.total_seconds()
        self._run = activity.client().get_workflow_handle(
            info.workflow_id, run_id=info.workflow_run_id
        )
        self._pending: list[str] = []
        self._room = max_chars  # what may still be streamed (the rest stays in the result)
        self._capped = False  # text was left out
        self._capped_sent = False
        self._unsent: list[TokenBatch] = []
        self._failing_since: float | None = None
        self._seq = 0
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._broken = False

    async def __aenter__(self) -> Self:
        if self._attempt > 1:  # supersede the earlier attempt's text even if this one says nothing
            self._batch("")
            self._wake.set()
        self._task = asyncio.create_task(self._run_loop())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        # Not cancelled: a cancelled update call is an error the sender would take for a
        # passing one. The loop ends after the batch it is sending, if any.
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._seq:  # streaming began: the rest goes the same way, before the result
            await self._drain()

    def add(self, text: str) -> None:
        """Queue ``text``; it is sent with the next batch (up to the limit)."""
        if not text or self._broken or self._capped_sent:
            return
        piece = text[: max(self._room, 0)]
        self._room -= len(piece)
        self._pending.append(piece)
        self._capped = self._capped or len(piece) < len(text)
        self._wake.set()

    def _batch(self, text: str) -> None:
        self._seq += 1
        self._unsent.append(
            TokenBatch(
                call_id=self._call_id,
                attempt=self._attempt,
                seq=self._seq,
                key=self._key,
                text=text,
            )
        )

    async def _run_loop(self) -> None:
        while not self._broken:
            await self._wake.wait()
            # Text gathers for one interval: a reply complete by then is not streamed at all
            # (its result carries it to the run, which publishes it with ``call_finished``).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._interval)
            if self._closing.is_set():
                return
            await self._flush()

    async def _flush(self) -> bool:
        """Send what is queued, in order; False if some of it could not be sent now."""
        self._wake.clear()
        text, self._pending = "".join(self._pending), []
        for start in range(0, len(text), MAX_BATCH_CHARS):
            self._batch(text[start : start + MAX_BATCH_CHARS])
        if self._capped and not self._capped_sent:  # the limit was reached: the last batch
            if not self._unsent:
                self._batch("")
            self._unsent[-1] = self._unsent[-1].model_copy(update={"capped": True})
            self._capped_sent = True
        while self._unsent and not self._broken:
            if not await self._send(self._unsent[0]):
                return False
            if self._unsent:  # (emptied if the run refused it)
                self._unsent.pop(0)
        return True

    async def _send(self, batch: TokenBatch) -> bool:
        try:
            await self._run.execute_update(contract.STREAM_TOKENS, batch)
        except WorkflowUpdateFailedError as err:  # refused: the call is over, or not ours
            self._stop(err)
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if (isinstance(err, RPCError) and err.status in _FINAL) or (
                now - self._failing_since > _GIVE_UP_S
            ):
                self._stop(err)
            return self._broken
        self._failing_since = None
        return True

    async def _drain(self) -> None:
        """The attempt's last text: sent before the call returns its result to the run, so
        a client has the whole text before ``call_finished``."""
        for _ in range(int(_GIVE_UP_S / self._interval) + 2):
            if await self._flush():
                return
            await asyncio.sleep(self._interval)

    def _stop(self, err: Exception) -> None:
        self._broken = True
        self._unsent.clear()
        cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
        activity.logger.warning("streaming this model call's tokens stopped: %s", cause)
