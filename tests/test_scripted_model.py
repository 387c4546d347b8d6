"""The scripted model server, exercised through the real ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer

pytestmark = pytest.mark.unit

MODEL = "scripted-test-model"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "abcd"},
    {"role": "user", "content": "héllo"},
]


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as srv:
        yield srv


@pytest.fixture
async def client(server: ScriptedModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    # max_retries=0 so each scripted fault surfaces once instead of being retried away.
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as c:
        yield c


async def ask(client: openai.AsyncOpenAI, purpose: str | None = None) -> ChatCompletion:
    headers = {"X-Agent-Purpose": purpose} if purpose else {}
    return await client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        extra_headers=headers,
    )


async def test_text_reply_and_estimated_usage(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.text("hello world"), purpose="plan")
    completion = await ask(client, "plan")
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "hello world")
    assert choice.finish_reason == "stop"
    # "abcd" + "héllo" is 4 + 6 UTF-8 bytes -> ceil(10 / 4) = 3, plus 4 per message.
    prompt = math.ceil(10 / 4) + 2 * 4
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt
    assert completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == prompt + 3


async def test_explicit_usage_overrides_the_estimate(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.text("x", usage=(1000, 250)))
    usage = (await ask(client)).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1000, 250, 1250)


async def test_json_reply(server: ScriptedModelServer, client: openai.AsyncOpenAI) -> None:
    plan = {"steps": [{"tool": "search", "why": "find it"}], "done": False}
    server.enqueue(Reply.json(plan), purpose="plan")
    content = (await ask(client, "plan")).choices[0].message.content
    assert content is not None
    assert json.loads(content) == plan


async def test_tool_calls_reply(server: ScriptedModelServer, client: openai.AsyncOpenAI) -> None:
    server.enqueue(
        Reply.tool_calls(
            [
                {"name": "search", "arguments": {"query": "temporal"}},
                {"name": "fetch", "arguments": {"url": "https://example.org"}},
            ]
        ),
        purpose="execute",
    )
    choice = (await ask(client, "execute")).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.id for c in calls] == ["call_1", "call_2"]
    assert all(c.type == "function" for c in calls)
    functions = [(c.function.name, json.loads(c.function.arguments)) for c in calls]  # type: ignore[union-attr]
    assert functions == [
        ("search", {"query": "temporal"}),
        ("fetch", {"url": "https://example.org"}),
    ]


async def test_truncated_reply(server: ScriptedModelServer, client: openai.AsyncOpenAI) -> None:
    server.enqueue(Reply.truncated('{"answer": "long"}'))
    choice = (await ask(client)).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == '{"answer"'  # the first half of 18 characters


async def test_429_fault_carries_retry_after(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.fault(429, retry_after=1))
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


async def test_malformed_body_is_rejected_by_the_client(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.malformed())
    # openai 3.x lets the JSONDecodeError of an application/json 200 escape unwrapped (it is
    # not an APIError), so callers must treat ValueError from the client as a malformed reply.
    with pytest.raises((openai.APIError, json.JSONDecodeError)):
        await ask(client)
    assert server.count(status=200) == 1


async def test_purposes_route_to_their_own_queues_with_fallback(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.text("plan-1"), Reply.text("plan-2"), purpose="plan")
    server.enqueue(Reply.text("exec-1"), purpose="execute")
    server.enqueue(Reply.text("fallback"), purpose="*")
    answers = [
        (await ask(client, purpose)).choices[0].message.content
        for purpose in ("execute", "plan", "plan", "plan")
    ]
    assert answers == ["exec-1", "plan-1", "plan-2", "fallback"]
    assert server.pending() == 0


async def test_request_log(server: ScriptedModelServer, client: openai.AsyncOpenAI) -> None:
    server.enqueue(Reply.text("a"), Reply.text("b"), purpose="plan")
    server.enqueue(Reply.fault(500), purpose="evaluate")
    await ask(client, "plan")
    await ask(client, "plan")
    with pytest.raises(openai.InternalServerError):
        await ask(client, "evaluate")
    assert server.count() == 3
    assert server.count(purpose="plan") == 2
    assert server.count(status=500) == 1
    assert server.count(purpose="plan", status=500) == 0
    first = server.requests[0]
    assert (first.purpose, first.model, first.status) == ("plan", MODEL, 200)
    assert first.body["messages"] == MESSAGES
    assert first.headers["x-agent-purpose"] == "plan"
    assert first.answered_at is not None
    assert first.received_at <= first.answered_at
    server.reset()
    assert server.count() == 0
    assert server.pending() == 0


async def test_nothing_scripted_is_a_clear_400(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await ask(client, "summarize")
    assert f"no scripted reply left for purpose 'summarize' (model {MODEL})" in caught.value.message
    assert caught.value.code == "no_scripted_reply"
    assert server.count(purpose="summarize", status=400) == 1


async def test_responder_computes_replies_after_the_queue(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    seen: list[RecordedRequest] = []

    def judge(request: RecordedRequest) -> Reply:
        seen.append(request)
        # Responders run outside the server lock, so they may query the server.
        return Reply.json({"score": server.count(purpose="evaluate")})

    server.enqueue(Reply.json({"score": "queued"}), purpose="evaluate")
    server.set_responder("evaluate", judge)
    scores = [(await ask(client, "evaluate")).choices[0].message.content for _ in range(3)]
    assert scores == ['{"score": "queued"}', '{"score": 2}', '{"score": 3}']
    assert [r.purpose for r in seen] == ["evaluate", "evaluate"]


async def test_injected_faults_leave_the_script_alone(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.text("survived"), purpose="plan")
    server.inject_faults(1.0, ["429"], seed=7)
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client, "plan")
    assert caught.value.response.headers["retry-after"] == "1"
    assert server.pending("plan") == 1
    server.clear_faults()
    assert (await ask(client, "plan")).choices[0].message.content == "survived"


async def test_fault_injection_is_deterministic_per_seed() -> None:
    async def outcomes(seed: int) -> list[int]:
        with ScriptedModelServer() as srv:
            srv.set_responder("*", lambda _: Reply.text("ok"))
            srv.inject_faults(0.5, ["429", "500", "malformed"], seed=seed)
            async with httpx.AsyncClient(base_url=srv.base_url) as http:
                for _ in range(20):
                    await http.post("/chat/completions", json={"model": MODEL, "messages": []})
            return [r.status for r in srv.requests]

    first = await outcomes(3)
    assert first == await outcomes(3)
    assert 200 in first
    assert len(set(first)) > 1


async def test_hang_trips_the_client_timeout_and_the_server_survives(
    server: ScriptedModelServer,
) -> None:
    server.enqueue(Reply.hang(5.0), Reply.text("still here"))
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="test", max_retries=0, timeout=0.3
    ) as impatient:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await ask(impatient)
        assert time.monotonic() - started < 3
        assert (await ask(impatient)).choices[0].message.content == "still here"


async def test_default_delay_is_added(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.default_delay_s = 0.2
    server.enqueue(Reply.text("slow"))
    started = time.monotonic()
    await ask(client)
    assert time.monotonic() - started >= 0.2


async def test_models_list_and_unknown_paths(
    server: ScriptedModelServer, client: openai.AsyncOpenAI
) -> None:
    server.enqueue(Reply.text("hi"))
    await ask(client)
    assert [m.id async for m in client.models.list()] == [MODEL]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/embeddings")
    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"message", "type", "code"}


def test_standalone_process_serves_a_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"purpose": "plan", "kind": "json", "obj": {"ok": True}}]))
    command = [
        sys.executable,
        "-m",
        "durable_agents.testing.scripted_model",
        "--port",
        "0",
        "--script",
        str(script),
    ]
    cwd = Path(__file__).resolve().parents[1]
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            ready, base_url = process.stdout.readline().split()
            assert ready == "READY"
            assert base_url.startswith("http://127.0.0.1:")
            response = httpx.post(
                f"{base_url}/chat/completions",
                json={"model": MODEL, "messages": MESSAGES},
                headers={"X-Agent-Purpose": "plan"},
            )
            assert response.json()["choices"][0]["message"]["content"] == '{"ok": true}'
        finally:
            process.terminate()
