"""The OpenAI-compatible model provider and its error mapping.

The client is built with ``max_retries=0``: Temporal owns retries, so each attempt is
visible in the history and a retry survives a worker crash. Provider errors are mapped
to `ApplicationError` types the workflow understands (see `domain.errors`):

- 429: retryable, and the next attempt waits for ``Retry-After`` (``next_retry_delay``);
- timeouts, connection errors, 5xx, 408/409 and unparseable bodies: retryable;
- 400/401/403/404/422: non-retryable, so the workflow can move to a fallback model.

``openai`` is imported when the first client is built, not with this module: it takes
about a second, and a restarted worker should be polling (workflow tasks, tool calls)
before then. `OpenAIProvider.warm_up` builds the client ahead of the first model call.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote

from temporalio.exceptions import ApplicationError

from durable_agents._domain.errors import ErrorType
from durable_agents._domain.llm import LlmCall

if TYPE_CHECKING:
    import openai

# Where a streaming provider hands each piece of text as it arrives.
TextSink = Callable[[str], None]
PURPOSE_HEADER = "X-Agent-Purpose"
# Which call of the run this is (``plan #2``, ``evaluate t1``), percent-encoded: a re-run
# of a recorded run (`agentctl eval --from-runs`) answers each call with the reply its
# own call got, even when calls of one wave reach the model in another order.
CALL_HEADER = "X-Agent-Call"


def call_header_value(label: str) -> str:
    """A call's label as an ASCII header value (percent-encoded; ``unquote`` reads it)."""
    return quote(label, safe=" #-_.:()")


_MAX_RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class ProviderReply:
    """A model's answer with the usage the provider reported."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str


class ModelProvider(Protocol):
    """Anything that completes a chat: the OpenAI client, or the offline model."""

    async def complete(
        self, call: LlmCall, messages: list[dict[str, str]], on_text: TextSink | None = None
    ) -> ProviderReply:
        """Answer ``messages`` (already rendered) as ``call`` asks; text as it comes to
        ``on_text``, if given."""
        ...


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, if usable."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    raw = headers.get("retry-after")
    try:
        seconds = float(raw_ms) / 1000 if raw_ms is not None else float(raw)
    except (TypeError, ValueError):
        return None  # an HTTP-date form: let the retry policy's backoff decide
    return seconds if 0 < seconds <= _MAX_RETRY_AFTER_S else None


def map_openai_error(err: "openai.OpenAIError", model: str) -> ApplicationError:
    """Translate an openai exception into a typed, correctly retryable ApplicationError."""
    import openai

    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        message = f"model '{model}' answered HTTP {status}: {err.message}"
        if status == 429:
            delay = retry_after_seconds(err.response.headers)
            return ApplicationError(
                message,
                type=ErrorType.MODEL_RATE_LIMITED,
                next_retry_delay=timedelta(seconds=delay) if delay else None,
            )
        if status >= 500 or status in (408, 409):
            return ApplicationError(message, type=ErrorType.MODEL_UNAVAILABLE)
        return ApplicationError(message, type=ErrorType.MODEL_REJECTED, non_retryable=True)
    if isinstance(err, openai.APITimeoutError):
        return ApplicationError(f"model '{model}' timed out", type=ErrorType.MODEL_UNAVAILABLE)
    if isinstance(err, openai.APIConnectionError):
        return ApplicationError(
            f"cannot reach the model endpoint for '{model}': {err}",
            type=ErrorType.MODEL_UNAVAILABLE,
        )
    # A body the client could not parse: most often a proxy or provider glitch.
    return ApplicationError(
        f"model '{model}' sent an unreadable response: {err}", type=ErrorType.MODEL_UNAVAILABLE
    )


class OpenAIProvider:
    """Chat completions through the official ``openai`` async client.

    With ``stream=True`` (the default) replies are streamed (``stream=True`` with
    ``stream_options.include_usage``): text goes to ``on_text`` as it arrives, and the
    usage comes from the stream's last chunk, as exact as a whole reply's.
    """

    def __init__(
        self, client: "openai.AsyncOpenAI | None" = None, *, stream: bool = True, **settings: Any
    ) -> None:
        self._client = client
        self._stream = stream
        self._settings = settings

    @classmethod
    def from_settings(
        cls, api_key: str, base_url: str | None, timeout_s: float = 120.0, *, stream: bool = True
    ) -> "OpenAIProvider":
        """A provider whose client is built (retries disabled: Temporal owns them) on use."""
        return cls(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s, stream=stream
        )

    def warm_up(self) -> None:
        """Import ``openai`` and build the client now (blocking; run it in a thread)."""
        self._client_now()

    def _client_now(self) -> "openai.AsyncOpenAI":
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(**self._settings)
        return self._client

    async def complete(
        self, call: LlmCall, messages: list[dict[str, str]], on_text: TextSink | None = None
    ) -> ProviderReply:
        """One chat completion; errors are raised as typed `ApplicationError`."""
        if self._stream:
            return await self._streamed(call, messages, on_text or _ignore)
        import openai

        try:
            resp = await self._client_now().chat.completions.create(
                model=call.model,
                messages=messages,  # type: ignore[arg-type]
                max_completion_tokens=call.max_tokens,
                temperature=call.temperature,
                extra_headers=_headers(call),
                **_response_format(call),
            )
        except openai.OpenAIError as err:
            raise map_openai_error(err, call.model) from err
        except ValueError as err:
            # openai raises the bare JSONDecodeError for a 200 whose body is not JSON.
            raise ApplicationError(
                f"model '{call.model}' sent a body that is not JSON: {err}",
                type=ErrorType.MODEL_UNAVAILABLE,
            ) from err
        if not resp.choices:
            raise ApplicationError(
                f"model '{call.model}' returned no choices", type=ErrorType.MODEL_UNAVAILABLE
            )
        choice = resp.choices[0]
        usage = resp.usage
        return ProviderReply(
            text=choice.message.content or "",
            model=resp.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            # Some compatible servers omit it, whatever the type says.
            finish_reason=cast("str | None", choice.finish_reason) or "stop",
        )

    async def _streamed(
        self, call: LlmCall, messages: list[dict[str, str]], on_text: TextSink
    ) -> ProviderReply:
        """One streamed chat completion: text to ``on_text``, usage from the last chunk.

        The chunks are read as plain dicts (``AsyncStream[object]``), not as the client's
        typed ``ChatCompletionChunk``: building that model for every SSE event cost more
        CPU than the rest of the call (bench/streaming.py, ``extra_step_ratio``). The
        client still parses the SSE and raises its errors (error events, broken streams).
        """
        import httpx
        import openai

        reply = _Gathered(model=call.model)
        try:
            raw = await self._client_now().chat.completions.with_raw_response.create(
                model=call.model,
                messages=cast(Any, messages),
                max_completion_tokens=call.max_tokens,
                temperature=call.temperature,
                extra_headers=_headers(call),
                stream=True,
                stream_options={"include_usage": True},
                **_response_format(call),
            )
            async with raw.parse(to=openai.AsyncStream[object]) as chunks:
                async for chunk in chunks:
                    reply.take(chunk, on_text)
        except openai.OpenAIError as err:
            raise map_openai_error(err, call.model) from err
        except httpx.HTTPError as err:  # the connection broke while the reply streamed
            raise ApplicationError(
                f"the stream from model '{call.model}' broke: {err!r}",
                type=ErrorType.MODEL_UNAVAILABLE,
            ) from err
        except ValueError as err:  # a chunk that is not JSON
            raise ApplicationError(
                f"model '{call.model}' streamed a chunk that is not JSON: {err}",
                type=ErrorType.MODEL_UNAVAILABLE,
            ) from err
        return reply.finished(call.model)


def _ignore(_text: str) -> None:
    """No one is listening to this call's text."""


@dataclass
class _Gathered:
    """A streamed reply as its chunks arrive."""

    model: str
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    def take(self, chunk: object, on_text: TextSink) -> None:
        """One streamed chunk as the server sent it (JSON, not checked by the client)."""
        if not isinstance(chunk, dict):
            raise _not_a_chunk(self.model, chunk)
        model, usage, choices = chunk.get("model"), chunk.get("usage"), chunk.get("choices")
        self.model = model if isinstance(model, str) and model else self.model
        if isinstance(usage, dict):
            self.input_tokens = _count(usage.get("prompt_tokens"), self.input_tokens)
            self.output_tokens = _count(usage.get("completion_tokens"), self.output_tokens)
        if choices is None:
            return  # the usage chunk has ``choices: []``; some servers leave it out
        if not isinstance(choices, list):
            raise _not_a_chunk(self.model, chunk)
        for choice in choices[:1]:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if content and isinstance(content, str):
                self.parts.append(content)
                on_text(content)
            finish = choice.get("finish_reason") if isinstance(choice, dict) else None
            if finish and isinstance(finish, str):
                self.finish_reason = finish

    def finished(self, requested: str) -> ProviderReply:
        if self.finish_reason is None:
            # Closed without a finish reason: a proxy or the provider cut the stream.
            raise ApplicationError(
                f"the stream from model '{requested}' ended before the reply was complete",
                type=ErrorType.MODEL_UNAVAILABLE,
            )
        return ProviderReply(
            text="".join(self.parts),
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            finish_reason=self.finish_reason,
        )


def _count(value: object, default: int) -> int:
    """A token count from a usage chunk (a server's odd value keeps the previous one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _not_a_chunk(model: str, chunk: object) -> ApplicationError:
    return ApplicationError(
        f"model '{model}' streamed a chunk that is not a completion chunk: {chunk!r:.200}",
        type=ErrorType.MODEL_UNAVAILABLE,
    )


def _headers(call: LlmCall) -> dict[str, str]:
    """What the scripted model and proxies read: the call's purpose and its label."""
    return {PURPOSE_HEADER: call.purpose, CALL_HEADER: call_header_value(call.label)}


def _response_format(call: LlmCall) -> dict[str, Any]:
    """The call's ``response_format``: its strict schema, JSON mode, or none."""
    if call.json_schema is not None:
        return {"response_format": {"type": "json_schema", "json_schema": call.json_schema}}
    if call.json_mode:
        return {"response_format": {"type": "json_object"}}
    return {}
