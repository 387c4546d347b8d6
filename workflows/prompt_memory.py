"""Which prompt parts the payload store already holds, so they travel by reference.

Prompt builders mark the parts that recur (``keep``: system prompt, the stable head of
a prompt, observations) and put them first. The activity stores every kept part, and
every *run* of consecutive kept parts joined in the ways `run_joins` lists, before it
calls the model. Once that activity has completed, later prompts send the longest
stored prefix of a run, or else each stored part, as its SHA-256 and size. A prompt is
its head and a window of observations; the next one of its kind has the window minus
its oldest step plus the new ones, so it costs one reference plus the new steps.
The memory lives in the workflow object, not in the carried state: after
continue-as-new each part is sent inline once more, which bounds what a run remembers.
If an activity finds a reference missing from the store, the caller forgets it all and
sends the prompt again inline.
"""

import hashlib
from collections.abc import Iterator
from itertools import groupby

from durable_agents._domain.llm import Message, Part, is_kept, kept_runs, run_joins

# Smaller parts cost less inline than as a reference (~90 bytes of JSON).
MIN_SHARED_BYTES = 128


class PromptMemory:
    """Turns repeated prompt parts into references; deterministic, so replay-safe."""

    def __init__(self) -> None:
        self._stored: set[str] = set()

    def compact(self, messages: list[Message]) -> list[Message]:
        """``messages`` with what the store holds sent by reference."""
        return [m.model_copy(update={"parts": list(self._compact(m.parts))}) for m in messages]

    def learn(self, messages: list[Message]) -> None:
        """Remember what an activity that completed has stored (``messages`` as built)."""
        for m in messages:
            for run in kept_runs(m.parts):
                self._stored.update(digest(p.text) for p in run)
                self._stored.update(digest(text) for text in run_joins([p.text for p in run]))

    def forget(self) -> None:
        """Send everything inline from now on (the store lost what it was given)."""
        self._stored.clear()

    def _compact(self, parts: list[Part]) -> Iterator[Part]:
        for kept, group in groupby(parts, key=is_kept):
            if kept:
                yield from self._compact_run(list(group))
            else:
                yield from group

    def _compact_run(self, run: list[Part]) -> Iterator[Part]:
        """The longest stored prefix as one reference, then the rest the same way."""
        while run:
            for end in range(len(run), 1, -1):
                text = "".join(p.text for p in run[:end])
                if digest(text) in self._stored:
                    lengths = [len(p.text.encode()) for p in run[:end]]
                    yield Part(ref=digest(text), size=sum(lengths), lengths=lengths)
                    break
            else:
                end = 1
                yield self._single(run[0])
            run = run[end:]

    def _single(self, part: Part) -> Part:
        size = len(part.text.encode())
        if size >= MIN_SHARED_BYTES and digest(part.text) in self._stored:
            return Part(ref=digest(part.text), size=size)
        return part


def digest(text: str) -> str:
    """The payload-store key of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()
