"""What crosses the boundary between the workflow and the LLM activity.

Messages may carry references to large content kept in the payload store instead of the
content itself, so the history never records a conversation twice. The workflow can
still bound a prompt's size exactly: a reference knows its byte length.
"""

from itertools import groupby
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from durable_agents._domain.budget import Usage
from durable_agents._domain.compact import CompactModel
from durable_agents._domain.prices import ModelPrice

# Tokens the chat format adds per message (role markers, separators); generous on purpose.
MESSAGE_OVERHEAD_TOKENS = 8


class PayloadRef(CompactModel):
    """A pointer to content in the payload store, with a short preview for people."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    key: str
    size_bytes: int = Field(ge=0)
    preview: str = ""


class Part(BaseModel):
    """A piece of a message's content: inline text, or a reference to text stored before.

    Prompts repeat most of what they said last time (the system prompt, the tool list,
    observations still in the window). Such a piece is marked ``keep``: the activity
    stores it, and later prompts send only its ``ref`` (the SHA-256 of its UTF-8 bytes)
    and ``size``, so the history records each piece once and the workflow still knows the
    prompt's exact size. Serialized without defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    text: str = ""
    keep: bool = False
    ref: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    size: int = Field(default=0, ge=0)
    # For a reference to several kept parts joined: their byte lengths, in order.
    lengths: list[int] = []

    @model_serializer
    def _compact(self) -> dict[str, Any]:
        if self.ref:
            ref: dict[str, Any] = {"ref": self.ref, "size": self.size}
            return {**ref, "lengths": self.lengths} if self.lengths else ref
        return {"text": self.text, "keep": True} if self.keep else {"text": self.text}

    def byte_size(self) -> int:
        """UTF-8 bytes this part renders to."""
        return self.size if self.ref else len(self.text.encode())


def is_kept(part: Part) -> bool:
    """Whether ``part`` is stored content: kept inline, or already a reference."""
    return part.keep or bool(part.ref)


def kept_runs(parts: list[Part]) -> list[list[Part]]:
    """The maximal runs of consecutive kept parts; each run is also stored as one text."""
    return [list(run) for kept, run in groupby(parts, key=is_kept) if kept]


def run_joins(texts: list[str]) -> list[str]:
    """What the store keeps of a run of 2+ kept parts besides each part, joined.

    The whole run and each suffix (a window that slid forward finds its older part
    stored), and the first part followed by the run minus its second (a prompt whose
    stable head is followed by a window that slid by one step is one reference).
    """
    joins = ["".join(texts[i:]) for i in range(len(texts) - 1)]
    if len(texts) > 2:
        joins.append(texts[0] + "".join(texts[2:]))
    return joins


class Message(CompactModel):
    """One chat message: ``text``, then ``parts`` in order, then ``attachments``.

    ``attachments`` (payload-store content) are appended on lines of their own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: str = Field(pattern=r"^(system|user|assistant)$")
    text: str = ""
    parts: list[Part] = []
    attachments: list[PayloadRef] = []

    def byte_size(self) -> int:
        """UTF-8 bytes of the rendered message: an upper bound of its tokens."""
        return (
            len(self.text.encode())
            + sum(p.byte_size() for p in self.parts)
            + sum(a.size_bytes + 1 for a in self.attachments)
        )

    def inline_text(self) -> str:
        """``text`` and the inline parts (for messages built with no references)."""
        return self.text + "".join(p.text for p in self.parts)


def prompt_token_bound(messages: list[Message]) -> int:
    """An upper bound of the input tokens of ``messages`` (a token is at least one byte)."""
    return sum(m.byte_size() + MESSAGE_OVERHEAD_TOKENS for m in messages)


def call_cost_bound(messages: list[Message], max_tokens: int, price: ModelPrice) -> Usage:
    """The most one call can consume: every prompt byte a token, plus ``max_tokens`` out."""
    input_bound = prompt_token_bound(messages)
    return Usage(
        input_tokens=input_bound,
        output_tokens=max_tokens,
        cost_micros=price.cost_micros(input_bound, max_tokens),
        llm_calls=1,
    )


class LlmCall(CompactModel):
    """Input of the ``llm_complete`` activity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    purpose: str
    agent: str = ""
    model: str
    messages: list[Message]
    max_tokens: int = Field(ge=1)
    temperature: float = 0.0
    json_mode: bool = False
    # The `json_schema` of a structured-output call (name, schema, strict); None: plain
    # JSON mode. Sent only where the route says its endpoint supports it.
    json_schema: dict[str, Any] | None = None
    cacheable: bool = False
    label: str = ""
    # The key the run's event stream takes this call's token batches with ("" for runs
    # that do not stream: the activity then sends none).
    stream_key: str = ""


class LlmResult(CompactModel):
    """Output of the ``llm_complete`` activity; large text arrives as a reference."""

    model: str
    text: str
    ref: PayloadRef | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    finish_reason: str = "stop"
    # The activity attempt that answered (0 from workers before streaming), and, for a
    # streamed call, the SHA-256 of its whole text (what its readers check theirs against)
    # and its length in characters (``text`` may be only a large answer's preview).
    attempt: int = 0
    text_sha256: str = ""
    text_chars: int = 0
