"""What crosses the boundary between the workflow and the LLM activity.

Messages may carry references to large content kept in the payload store instead of the
content itself, so the history never records a conversation twice. The workflow can
still bound a prompt's size exactly: a reference knows its byte length.
"""

from pydantic import BaseModel, ConfigDict, Field

from domain.budget import Usage
from domain.prices import ModelPrice

# Tokens the chat format adds per message (role markers, separators); generous on purpose.
MESSAGE_OVERHEAD_TOKENS = 8


class PayloadRef(BaseModel):
    """A pointer to content in the payload store, with a short preview for people."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    key: str
    size_bytes: int = Field(ge=0)
    preview: str = ""


class Message(BaseModel):
    """One chat message; ``attachments`` are appended to ``text`` by the activity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: str = Field(pattern=r"^(system|user|assistant)$")
    text: str
    attachments: list[PayloadRef] = []

    def byte_size(self) -> int:
        """UTF-8 bytes of the rendered message: an upper bound of its tokens."""
        return len(self.text.encode()) + sum(a.size_bytes + 1 for a in self.attachments)


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


class LlmCall(BaseModel):
    """Input of the ``llm_complete`` activity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    purpose: str
    agent: str = ""
    model: str
    messages: list[Message]
    max_tokens: int = Field(ge=1)
    temperature: float = 0.0
    json_mode: bool = False
    cacheable: bool = False
    label: str = ""


class LlmResult(BaseModel):
    """Output of the ``llm_complete`` activity; large text arrives as a reference."""

    model: str
    text: str
    ref: PayloadRef | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    finish_reason: str = "stop"
