"""A model call's text, heartbeated while it is written: no history, no workflow task.

`TokenHeartbeat` gathers the text the model client hands over and, every ``interval``
in which some arrived, heartbeats the attempt's text so far as a `TokenProgress`. The
server keeps the latest details with the pending activity and never writes them to the
history; clients read them with the run's description (``client/events.py``). A reply
complete within the first interval heartbeats nothing: ``call_finished`` carries it.

Heartbeats also tell the server the worker is alive, and each one replaces the details
before it; so while a call streams, the liveness beats (see ``agent_activities``) carry
the same details (`details`) instead of none. The worker's heartbeat throttle is set
below the interval (``workers/build.py``), so it never holds a batch back.

Streaming is best effort: a heartbeat that cannot be delivered is the SDK's to retry,
and never fails the model call.
"""

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, Self

from temporalio import activity

from durable_agents._domain.events import MAX_STREAMED_CHARS, PROGRESS_FORMAT, TokenProgress

# How long text waits to be sent: the latency it adds, against one heartbeat per interval.
DEFAULT_INTERVAL = timedelta(milliseconds=200)


class TokenHeartbeat:
    """Heartbeats one activity attempt's text as it arrives; use ``async with``."""

    def __init__(
        self,
        label: str,
        purpose: str,
        *,
        max_chars: int = MAX_STREAMED_CHARS,
        interval: timedelta = DEFAULT_INTERVAL,
    ) -> None:
        self._attempt = activity.info().attempt
        self._label, self._purpose = label[:400], purpose[:40]
        self._room = min(max_chars, MAX_STREAMED_CHARS)
        self._interval = interval.total_seconds()
        self._parts: list[str] = []
        self._chars = 0
        self._capped = False
        self._sent: tuple[int, bool] | None = None  # (chars, capped) of the last beat
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run_loop())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def add(self, text: str) -> None:
        """Take ``text``; it goes out with the next beat (up to the limit)."""
        if not text or self._capped:
            return
        piece = text[: self._room - self._chars]
        self._parts.append(piece)
        self._chars += len(piece)
        self._capped = len(piece) < len(text)

    def details(self) -> tuple[Any, ...]:
        """What a heartbeat of this call carries now (nothing before the first beat)."""
        if self._sent is None:
            return ()
        return (self._progress(),)

    def _progress(self) -> TokenProgress:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return TokenProgress(
            format=PROGRESS_FORMAT,
            attempt=self._attempt,
            label=self._label,
            purpose=self._purpose,
            text=self._parts[0] if self._parts else "",
            capped=self._capped,
        )

    async def _run_loop(self) -> None:
        while True:
            # Text gathers for one interval: a reply complete by then is never sent.
            await asyncio.sleep(self._interval)
            now = (self._chars, self._capped)
            if now != self._sent and self._chars:
                self._sent = now
                activity.heartbeat(self._progress())
