"""Sending a model call's tokens to its run as they arrive, in batches.

The model client hands over text piece by piece; `TokenSender` gathers it and sends one
`TokenBatch` per ``interval`` (the first piece at once, so the first words show without
waiting) through the SDK's `WorkflowStreamClient` (a signal, retried and deduplicated by
it). The run checks each batch (see ``workflows/run_events.py``) and publishes its text.

Streaming is best effort: a batch that cannot be sent (the run has ended, the frontend is
unreachable for longer than the retry window) stops the streaming of this attempt, never
the model call. What counts is the call's result; clients reconcile with it.
"""

import asyncio
import contextlib
from datetime import timedelta
from typing import Self

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._domain import contract
from durable_agents._domain.events import MAX_BATCH_CHARS, TokenBatch

# How long text waits to be sent: the latency it adds, against one signal per interval.
DEFAULT_INTERVAL = timedelta(milliseconds=100)
# A flush that cannot reach the run gives up after this long (the call goes on).
_FLUSH_RETRY = timedelta(seconds=20)
# Sends of an attempt's last batch before giving up on it.
_LAST_TRIES = 50
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

    def __init__(self, key: str, interval: timedelta = DEFAULT_INTERVAL) -> None:
        info = activity.info()
        self._key = key
        self._call_id = info.activity_id
        self._attempt = info.attempt
        self._interval = interval.total_seconds()
        self._client = WorkflowStreamClient.from_within_activity(max_retry_duration=_FLUSH_RETRY)
        self._topic = self._client.topic(contract.TOKENS_TOPIC, type=TokenBatch)
        self._pending: list[str] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._broken = False

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        if self._attempt > 1:  # supersede the earlier attempt's text even if this one says nothing
            self._send_now("")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drain()

    def add(self, text: str) -> None:
        """Queue ``text``; it is sent with the next batch."""
        if text and not self._broken:
            self._pending.append(text)
            self._wake.set()

    def _send_now(self, text: str) -> None:
        self._seq += 1
        batch = TokenBatch(
            call_id=self._call_id, attempt=self._attempt, seq=self._seq, key=self._key, text=text
        )
        self._topic.publish(batch)

    async def _run(self) -> None:
        while not self._broken:
            await self._wake.wait()
            await self._flush()
            await asyncio.sleep(self._interval)

    async def _flush(self) -> bool:
        """Send what is queued; False if it could not be sent this time."""
        self._wake.clear()
        text, self._pending = "".join(self._pending), []
        for start in range(0, len(text), MAX_BATCH_CHARS):
            self._send_now(text[start : start + MAX_BATCH_CHARS])
        if self._broken:
            return True
        try:
            await self._client.flush()
        except RPCError as err:
            # The batch stays pending and goes with the next flush, unless the run is gone.
            if err.status in _FINAL:
                self._stop(err)
            return self._broken
        except TimeoutError as err:  # pending past the retry window: dropped by the client
            self._stop(err)
        return True

    async def _drain(self) -> None:
        """The last text of the attempt: retried until sent or given up (the call's
        result goes to the run after it, so a client has the whole text first)."""
        for _ in range(_LAST_TRIES):
            if await self._flush():
                return
            await asyncio.sleep(self._interval)
        self._stop(TimeoutError("the last batch could not be sent"))

    def _stop(self, err: Exception) -> None:
        self._broken = True
        activity.logger.warning("streaming this model call's tokens stopped: %s", err)
