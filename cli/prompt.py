"""A y/N question at the terminal that gives way when the world answers first.

``agentctl run`` and ``make demo`` ask a person at the keyboard to approve a request. The
same request can be decided from another terminal, the Web UI or by its deadline, and
the run can end; a prompt blocked in ``input()`` would then sit there until someone
types, and the answer would go to a request that no longer waits. So the terminal is read
without blocking (the event loop watches stdin), and while the question is up the
caller's ``elsewhere`` check runs every ``poll_s``: when it returns a sentence, the prompt
ends with it.

Ctrl-C is the caller's business: `detach_on_ctrl_c` turns one press into an event, so a
command can say what keeps going and exit, instead of a traceback or a second press.
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

YES = ("y", "yes")
NO = ("n", "no", "")
T = TypeVar("T")


@dataclass(frozen=True)
class Answered:
    """The person answered: ``yes`` or not."""

    yes: bool


@dataclass(frozen=True)
class Overtaken:
    """Something else answered first; ``what`` says what, in words."""

    what: str


async def ask_yes_no(
    console: Console,
    question: str,
    *,
    elsewhere: Callable[[], Awaitable[str | None]],
    poll_s: float = 0.5,
    stdin_fd: int = 0,
) -> Answered | Overtaken:
    """Ask ``question [y/N]`` until the person answers y/yes or n/no/Enter, or until
    ``elsewhere`` returns a sentence (the request was decided, the run ended).

    Anything else typed asks again. End of input counts as no answer: the prompt waits for
    ``elsewhere`` alone.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    buffer = bytearray()

    def readable() -> None:
        chunk = os.read(stdin_fd, 4096)
        if not chunk:
            loop.remove_reader(stdin_fd)
            lines.put_nowait(None)
            return
        buffer.extend(chunk)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            lines.put_nowait(line.decode(errors="replace"))

    def show() -> None:
        console.print(f"{escape(question)} \\[y/N] ", end="")
        console.file.flush()

    show()
    loop.add_reader(stdin_fd, readable)
    try:
        while True:
            try:
                line = await asyncio.wait_for(lines.get(), poll_s)
            except TimeoutError:  # nothing typed: has the world answered?
                what = await elsewhere()
                if what is not None:
                    console.print()
                    console.print(what)
                    return Overtaken(what)
                continue
            if line is None:  # end of input: from now on only the world can answer
                console.print()
                console.print("(no more input here: waiting for an answer from elsewhere)")
                continue
            word = line.strip().lower()
            if word in YES or word in NO:
                return Answered(yes=word in YES)
            console.print(f"please answer y or n (got '{escape(line.strip())}')")
            show()
    finally:
        loop.remove_reader(stdin_fd)


@contextlib.asynccontextmanager
async def detach_on_ctrl_c() -> AsyncIterator[asyncio.Event]:
    """An event set by the first Ctrl-C (SIGINT) while the block runs."""
    pressed = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, pressed.set)
    try:
        yield pressed
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def until_detached(work: Awaitable[T], pressed: asyncio.Event) -> T | None:
    """``work``'s result, or None (``work`` cancelled) once ``pressed`` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(pressed.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
