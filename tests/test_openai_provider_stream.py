"""The streamed `OpenAIProvider` (chunks read as plain JSON): what it returns, and how a
server's bad stream fails it, against real HTTP servers and the real ``openai`` client."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from durable_agents._activities.openai_provider import OpenAIProvider
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.llm import LlmCall
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer

CALL = LlmCall(purpose="summarize", model="gpt-4o-mini", messages=[], max_tokens=100)
MESSAGES = [{"role": "user", "content": "say something"}]
ANSWER = "A streamed answer, in several chunks of seven characters."


async def _complete(
    base_url: str, *, stream: bool, seen: list[str] | None = None
) -> Any:  # a ProviderReply
    provider = OpenAIProvider.from_settings("test-key", base_url, stream=stream)
    return await provider.complete(CALL, MESSAGES, seen.append if seen is not None else None)


async def test_a_streamed_reply_is_the_same_as_a_whole_one() -> None:
    with ScriptedModelServer() as model:
        model.enqueue(Reply.text(ANSWER, usage=(31, 17), chunk_chars=7), purpose="summarize")
        model.enqueue(Reply.text(ANSWER, usage=(31, 17)), purpose="summarize")
        seen: list[str] = []
        streamed = await _complete(model.base_url, stream=True, seen=seen)
        whole = await _complete(model.base_url, stream=False)
        asked = [r.body.get("stream", False) for r in model.requests]
    assert streamed == whole
    assert (streamed.text, streamed.input_tokens, streamed.output_tokens) == (ANSWER, 31, 17)
    assert streamed.finish_reason == "stop" and streamed.model == "gpt-4o-mini"
    assert "".join(seen) == ANSWER and len(seen) == -(-len(ANSWER) // 7)
    assert asked == [True, False]


@pytest.mark.parametrize("how", ["error", "abort"])
async def test_a_cut_stream_is_a_retryable_error(how: str) -> None:
    with ScriptedModelServer() as model:
        model.enqueue(Reply.cut(ANSWER, after_chunks=2, how=how), purpose="summarize")  # type: ignore[arg-type]
        seen: list[str] = []
        with pytest.raises(ApplicationError) as caught:
            await _complete(model.base_url, stream=True, seen=seen)
    assert caught.value.type == ErrorType.MODEL_UNAVAILABLE and not caught.value.non_retryable
    assert "".join(seen) == ANSWER[:16]  # what came before the cut was passed on


async def test_a_rate_limited_stream_keeps_its_retry_after() -> None:
    with ScriptedModelServer() as model:
        model.enqueue(Reply.fault(429, retry_after=7), purpose="summarize")
        with pytest.raises(ApplicationError) as caught:
            await _complete(model.base_url, stream=True)
    assert caught.value.type == ErrorType.MODEL_RATE_LIMITED
    assert caught.value.next_retry_delay is not None
    assert caught.value.next_retry_delay.total_seconds() == 7


async def test_a_stream_chunk_that_is_not_json_is_a_retryable_error() -> None:
    with ScriptedModelServer() as model:
        model.enqueue(Reply.malformed(), purpose="summarize")
        with pytest.raises(ApplicationError) as caught:
            await _complete(model.base_url, stream=True)
    assert caught.value.type == ErrorType.MODEL_UNAVAILABLE
    assert "not JSON" in str(caught.value)


def _chunk(body: str) -> bytes:
    return f"data: {body}\n\n".encode()


GOOD_END = (
    _chunk('{"model": "m", "choices": [{"delta": {}, "finish_reason": "stop"}]}')
    + _chunk('{"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}')
    + b"data: [DONE]\n\n"
)


@contextmanager
def _raw_sse(body: bytes) -> Iterator[str]:
    """A real HTTP server answering every POST with ``body`` as an SSE stream."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "bad",
    ['["a", "list"]', '"a string"', '{"choices": "not a list"}', "42"],
)
async def test_a_stream_chunk_that_is_no_completion_chunk_is_a_retryable_error(bad: str) -> None:
    body = _chunk('{"choices": [{"delta": {"content": "hi"}}]}') + _chunk(bad) + GOOD_END
    with _raw_sse(body) as base_url, pytest.raises(ApplicationError) as caught:
        await _complete(base_url, stream=True)
    assert caught.value.type == ErrorType.MODEL_UNAVAILABLE and not caught.value.non_retryable
    assert "not a completion chunk" in str(caught.value)


async def test_odd_but_harmless_chunk_fields_are_passed_over() -> None:
    body = (
        b": a comment line, as some compatible servers send to keep the connection alive\n\n"
        + _chunk('{"choices": [{"delta": {"content": "Hel"}}]}')
        + _chunk('{"choices": [{"delta": null}, {"delta": {"content": "ignored"}}]}')
        + _chunk('{"choices": ["not a choice"]}')
        + _chunk('{"model": 7, "choices": [{"delta": {"content": ["x"]}}]}')
        + _chunk('{"usage": {"prompt_tokens": "many", "completion_tokens": true}}')
        + _chunk('{"choices": [{"delta": {"content": "lo"}}]}')
        + GOOD_END
    )
    with _raw_sse(body) as base_url:
        reply = await _complete(base_url, stream=True)
    assert (reply.text, reply.model, reply.finish_reason) == ("Hello", "m", "stop")
    assert (reply.input_tokens, reply.output_tokens) == (5, 2)


async def test_a_stream_that_ends_without_a_finish_reason_is_a_retryable_error() -> None:
    body = _chunk('{"choices": [{"delta": {"content": "half an"}}]}') + b"data: [DONE]\n\n"
    with _raw_sse(body) as base_url, pytest.raises(ApplicationError) as caught:
        await _complete(base_url, stream=True)
    assert caught.value.type == ErrorType.MODEL_UNAVAILABLE
    assert "ended before the reply was complete" in str(caught.value)
