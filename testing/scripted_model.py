"""A scripted OpenAI-compatible chat-completions server for tests and benchmarks.

The real ``openai.AsyncOpenAI`` client talks to it over HTTP, so everything between our code
and the wire is exercised; only the model's answers are scripted. Replies are queued per
``X-Agent-Purpose`` header (``"*"`` is the fallback), or computed by responder functions.

It runs on the standard library's threading HTTP server in a daemon thread: it does not share
an asyncio loop with the test, and worker subprocesses can reach it through ``base_url``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self
from urllib.parse import urlsplit

from durable_agents._domain.schema_check import check
from durable_agents._domain.structured import strict_problems

ReplyKind = Literal["text", "tool_calls", "fault", "malformed", "truncated", "hang", "cut"]
CutHow = Literal["error", "abort"]
Responder = Callable[["RecordedRequest"], "Reply"]
Usage = tuple[int, int] | None  # (prompt_tokens, completion_tokens); None means estimate
FAULT_KINDS: tuple[str, ...] = ("429", "500", "timeout", "malformed")
_ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 429: "requests"}
# Valid JSON cut off mid-object: what a proxy dropping the connection half-way looks like.
_MALFORMED_BODY = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"mes'


@dataclass(frozen=True)
class Reply:
    """One scripted answer; build it with the classmethod constructors, not directly."""

    kind: ReplyKind
    content: str | None = None
    calls: tuple[tuple[str, str], ...] = ()
    status: int = 200
    retry_after: float | None = None
    message: str | None = None
    usage: Usage = None
    delay_s: float = 0.0
    # Streamed replies (``stream: true``): characters per chunk and the pause after each.
    chunk_chars: int = 8
    chunk_delay_s: float = 0.0
    # A cut stream: after this many content chunks, an error event or a dropped connection.
    cut_after: int = 0
    cut_how: CutHow = "error"
    # A streamed reply waits after ``gate_after`` content chunks until ``gate`` is set (so a
    # test can act at that point, without guessing how long it takes).
    gate: threading.Event | None = None
    gate_after: int = 0

    @classmethod
    def text(
        cls,
        content: str,
        *,
        usage: Usage = None,
        delay_s: float = 0.0,
        chunk_chars: int = 8,
        chunk_delay_s: float = 0.0,
        gate: threading.Event | None = None,
        gate_after: int = 1,
    ) -> Reply:
        """A plain assistant message (finish_reason ``stop``); streamed in chunks of
        ``chunk_chars`` characters, ``chunk_delay_s`` apart, when the client asks (and
        held after ``gate_after`` chunks until ``gate`` is set, if given)."""
        return cls(
            "text",
            content=content,
            usage=usage,
            delay_s=delay_s,
            chunk_chars=chunk_chars,
            chunk_delay_s=chunk_delay_s,
            gate=gate,
            gate_after=gate_after,
        )

    @classmethod
    def json(
        cls, obj: object, *, usage: Usage = None, delay_s: float = 0.0, chunk_delay_s: float = 0.0
    ) -> Reply:
        """An assistant message whose content is ``json.dumps(obj)``."""
        return cls(
            "text",
            content=json.dumps(obj),
            usage=usage,
            delay_s=delay_s,
            chunk_delay_s=chunk_delay_s,
        )

    @classmethod
    def cut(
        cls,
        content: str,
        *,
        after_chunks: int,
        how: CutHow = "error",
        chunk_chars: int = 8,
        chunk_delay_s: float = 0.0,
        gate: threading.Event | None = None,
    ) -> Reply:
        """A stream that breaks after ``after_chunks`` chunks of ``content``: an error event
        (what the API sends when a server fails mid-reply) or a dropped connection
        (``how="abort"``); with ``gate``, it breaks only once ``gate`` is set. Asked
        without streaming, it is an HTTP 500."""
        return cls(
            "cut",
            content=content,
            chunk_chars=chunk_chars,
            chunk_delay_s=chunk_delay_s,
            cut_after=after_chunks,
            cut_how=how,
            gate=gate,
            gate_after=after_chunks,
        )

    @classmethod
    def tool_calls(
        cls, calls: Sequence[Mapping[str, Any]], *, usage: Usage = None, delay_s: float = 0.0
    ) -> Reply:
        """Calls as ``{"name": n, "arguments": {...}}`` (str sent verbatim); ids ``call_<n>``."""
        encoded = tuple(
            (str(c["name"]), a if isinstance(a := c.get("arguments", {}), str) else json.dumps(a))
            for c in calls
        )
        return cls("tool_calls", calls=encoded, usage=usage, delay_s=delay_s)

    @classmethod
    def fault(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        delay_s: float = 0.0,
    ) -> Reply:
        """An HTTP error with an OpenAI error body and, optionally, a ``Retry-After`` header."""
        return cls(
            "fault", status=status, retry_after=retry_after, message=message, delay_s=delay_s
        )

    @classmethod
    def malformed(cls, *, delay_s: float = 0.0) -> Reply:
        """HTTP 200 whose body is not valid JSON."""
        return cls("malformed", delay_s=delay_s)

    @classmethod
    def truncated(
        cls, content: str, *, keep_chars: int | None = None, usage: Usage = None
    ) -> Reply:
        """finish_reason ``length``; keeps the first ``keep_chars`` (default: half) of content."""
        keep = len(content) // 2 if keep_chars is None else keep_chars
        return cls("truncated", content=content[:keep], usage=usage)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Say nothing for ``seconds`` (to trip client timeouts), then answer 504."""
        return cls("hang", status=504, delay_s=seconds)


@dataclass
class RecordedRequest:
    """One request as logged in ``ScriptedModelServer.requests`` (headers are lower-cased)."""

    method: str
    path: str
    purpose: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    status: int = 0
    answered_at: float | None = None
    # Streamed replies: the text of each content chunk and when it left (``time.time()``).
    chunks_sent: list[tuple[float, str]] = field(default_factory=list)

    @property
    def response_format(self) -> str | None:
        """The ``response_format`` type the request asked for (``json_schema``,
        ``json_object``), or None."""
        fmt = self.body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The ``json_schema`` object of a structured-output request."""
        fmt = self.body.get("response_format")
        found = fmt.get("json_schema") if isinstance(fmt, dict) else None
        return found if isinstance(found, dict) else None


class _Answer(NamedTuple):
    status: int
    body: bytes
    delay_s: float = 0.0
    retry_after: float | None = None
    # A streamed answer: SSE events (each with the content it carries), written one by one.
    events: tuple[tuple[bytes, str], ...] = ()
    chunk_delay_s: float = 0.0
    abort_after: int | None = None
    gate: threading.Event | None = None
    gate_after: int = 0


def _error(status: int, message: str, code: str | None = None, delay_s: float = 0.0) -> _Answer:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = code or ("rate_limit_exceeded" if status == 429 else None)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _Answer(status, json.dumps(body).encode(), delay_s)


def _size(content: object) -> int:
    """UTF-8 bytes of a message content: a string, a list of content parts, or None."""
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) if isinstance(p, dict) else "" for p in content)
    text = "" if content is None else content if isinstance(content, str) else json.dumps(content)
    return len(text.encode())


class ScriptedModelServer:
    """The scripted server; use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self, *, port: int = 0, default_delay_s: float = 0.0, models: Sequence[str] = ()
    ) -> None:
        """Configure without binding; ``port=0`` picks a free port at ``start()``."""
        self.default_delay_s = default_delay_s
        self._wanted_port = port
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Reply]] = {}
        self._responders: dict[str, Responder] = {}
        self._log: list[RecordedRequest] = []
        self._models: dict[str, None] = dict.fromkeys(models)  # an insertion-ordered set
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._counter = self._calls = 0
        self._httpd: ThreadingHTTPServer | None = None
        # Delays wait on this event so stop() wakes hung handlers instead of leaving them asleep.
        self._stopping = threading.Event()

    def start(self) -> Self:
        """Bind 127.0.0.1 and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("ScriptedModelServer already started")
        self._stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"scripted": self})
        # ThreadingHTTPServer uses daemon threads, so a hung reply never blocks interpreter exit.
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._wanted_port), handler)
        # A short poll interval keeps stop() (which waits for the next poll) fast in fixtures.
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, name="scripted-model", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; hung replies are woken up."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            self._stopping.set()
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound."""
        if self._httpd is None:
            raise RuntimeError("ScriptedModelServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, ready for ``AsyncOpenAI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply, purpose: str = "*") -> None:
        """Append replies to the FIFO queue of ``purpose`` (``"*"`` is the fallback queue)."""
        with self._lock:
            self._queues.setdefault(purpose, deque()).extend(replies)

    def set_responder(self, purpose: str, fn: Responder) -> None:
        """Compute replies for ``purpose`` once its queue is empty (``"*"`` allowed)."""
        with self._lock:
            self._responders[purpose] = fn

    def pending(self, purpose: str | None = None) -> int:
        """Queued replies not yet served, for one purpose or in total."""
        with self._lock:
            queues = self._queues.values() if purpose is None else [self._queues.get(purpose, ())]
            return sum(len(q) for q in queues)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._log)

    def count(self, purpose: str | None = None, status: int | None = None) -> int:
        """How many logged requests match ``purpose`` and/or answered ``status``."""
        with self._lock:
            return sum(
                (purpose is None or r.purpose == purpose) and (status is None or r.status == status)
                for r in self._log
            )

    def reset(self) -> None:
        """Forget queues, responders and the request log (faults stay; see ``clear_faults``)."""
        with self._lock:
            self._queues.clear()
            self._responders.clear()
            self._log.clear()
            self._counter = self._calls = 0

    def inject_faults(self, rate: float, kinds: Sequence[str], seed: int) -> None:
        """Fail a ``rate`` share of completions with one of ``kinds``, drawn from ``seed``."""
        if not 0.0 <= rate <= 1.0 or not kinds or set(kinds) - set(FAULT_KINDS):
            raise ValueError(f"need 0 <= rate <= 1 and kinds within {FAULT_KINDS}")
        with self._lock:
            self._fault_rate, self._fault_kinds = rate, tuple(kinds)
            self._rng = random.Random(seed)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        with self._lock:
            self._fault_rate, self._fault_kinds = 0.0, ()

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[RecordedRequest, _Answer]:
        path = urlsplit(raw_path).path.rstrip("/")
        body: dict[str, Any] = {}
        problem = None
        try:
            parsed = json.loads(raw) if raw else {}
            body = parsed if isinstance(parsed, dict) else {}
            problem = None if isinstance(parsed, dict) else "request body must be a JSON object"
        except ValueError as exc:
            problem = f"request body is not valid JSON: {exc}"
        purpose, model = headers.get("x-agent-purpose") or "*", str(body.get("model", ""))
        record = RecordedRequest(method, path, purpose, model, body, headers, time.monotonic())
        with self._lock:
            self._log.append(record)
            if record.model:
                self._models.setdefault(record.model, None)
            models = list(self._models)
        if (method, path) == ("GET", "/v1/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in models
            ]
            answer = _Answer(200, json.dumps({"object": "list", "data": data}).encode())
        elif (method, path) != ("POST", "/v1/chat/completions"):
            answer = _error(404, f"unknown endpoint {method} {path}", "unknown_url")
        elif problem:
            answer = _error(400, problem)
        else:
            answer = _schema_refusal(record) or self._complete(record)
        return record, answer._replace(delay_s=answer.delay_s + self.default_delay_s)

    def _answered(self, record: RecordedRequest, status: int) -> None:
        with self._lock:
            record.status, record.answered_at = status, time.monotonic()

    def _complete(self, record: RecordedRequest) -> _Answer:
        where = f"purpose '{record.purpose}' (model {record.model})"
        with self._lock:
            # Faults are drawn first and leave the queue alone, so the retried call still gets
            # the reply the test scripted.
            if self._fault_kinds and self._rng.random() < self._fault_rate:
                reply = _FAULTS[self._rng.choice(self._fault_kinds)]
                return self._render(reply, record)
            sources: list[deque[Reply] | Responder | None] = []
            for key in (record.purpose, "*"):
                sources += [self._queues.get(key), self._responders.get(key)]
            reply_or_fn = next((s for s in sources if s), None)
            if isinstance(reply_or_fn, deque):
                return self._render(reply_or_fn.popleft(), record)
        if reply_or_fn is None:
            # 400 rather than 5xx: the runtime does not retry it, so the test fails at once.
            return _error(400, f"no scripted reply left for {where}", "no_scripted_reply")
        try:  # outside the lock: responders may call count() or enqueue()
            computed: object = reply_or_fn(record)
        except Exception as exc:
            computed = exc
        if not isinstance(computed, Reply):
            return _error(400, f"responder for {where} gave {computed!r}", "responder_error")
        with self._lock:
            return self._render(computed, record)

    def _render(self, reply: Reply, record: RecordedRequest) -> _Answer:
        """Turn a reply into bytes; the caller holds the lock (the id counter is shared)."""
        if reply.kind in ("fault", "hang"):
            text = reply.message or f"scripted {reply.kind} (HTTP {reply.status})"
            answer = _error(reply.status, text, delay_s=reply.delay_s)
            return answer._replace(retry_after=reply.retry_after)
        streamed = bool(record.body.get("stream"))
        if reply.kind == "malformed":
            if streamed:
                return _Answer(
                    200, b"", reply.delay_s, events=((b"data: " + _MALFORMED_BODY + b"\n\n", ""),)
                )
            return _Answer(200, _MALFORMED_BODY, reply.delay_s)
        if reply.kind == "cut" and not streamed:
            return _error(500, "scripted stream cut (asked unstreamed)", delay_s=reply.delay_s)
        self._counter += 1
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.kind == "tool_calls":
            first, self._calls = self._calls + 1, self._calls + len(reply.calls)
            message["tool_calls"] = [
                {"id": f"call_{n}", "type": "function", "function": {"name": f, "arguments": a}}
                for n, (f, a) in enumerate(reply.calls, start=first)
            ]
        broken = _reply_breaks_schema(record, reply)
        if broken:
            return broken
        finish = {"text": "stop", "cut": "stop", "tool_calls": "tool_calls", "truncated": "length"}[
            reply.kind
        ]
        messages = [m for m in record.body.get("messages") or [] if isinstance(m, dict)]
        prompt = math.ceil(sum(_size(m.get("content")) for m in messages) / 4) + 4 * len(messages)
        said = reply.content or "".join(name + args for name, args in reply.calls)
        prompt, completion = reply.usage or (prompt, max(1, math.ceil(_size(said) / 4)))
        payload = {
            "id": f"chatcmpl-scripted-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        if streamed:
            answer = _streamed(reply, payload, message, record.body)
            return answer._replace(gate=reply.gate, gate_after=reply.gate_after)
        return _Answer(200, json.dumps(payload).encode(), reply.delay_s)


def _streamed(
    reply: Reply, payload: dict[str, Any], message: dict[str, Any], body: dict[str, Any]
) -> _Answer:
    """``payload`` (a whole completion) as the API streams it: SSE chunks, then usage."""
    head = {k: payload[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + json.dumps({**head, "choices": choices, **extra}).encode() + b"\n\n"

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        return event([{"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}])

    events: list[tuple[bytes, str]] = [(delta({"role": "assistant", "content": ""}), "")]
    content = reply.content or ""
    step = max(1, reply.chunk_chars)
    pieces = [content[i : i + step] for i in range(0, len(content), step)]
    events += [(delta({"content": piece}), piece) for piece in pieces]
    for n, call in enumerate(message.get("tool_calls") or []):
        events.append((delta({"tool_calls": [{"index": n, **call}]}), ""))
    if reply.kind == "cut":
        kept = events[: reply.cut_after + 1]
        if reply.cut_how == "abort":
            return _Answer(
                200,
                b"",
                reply.delay_s,
                events=tuple(kept),
                chunk_delay_s=reply.chunk_delay_s,
                abort_after=len(kept),
            )
        failure = {"message": "scripted stream cut", "type": "server_error", "code": None}
        error = b"data: " + json.dumps({"error": failure}).encode() + b"\n\n"
        return _Answer(
            200, b"", reply.delay_s, events=(*kept, (error, "")), chunk_delay_s=reply.chunk_delay_s
        )
    events.append((delta({}, payload["choices"][0]["finish_reason"]), ""))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((event([], usage=payload["usage"]), ""))
    events.append((b"data: [DONE]\n\n", ""))
    return _Answer(200, b"", reply.delay_s, events=tuple(events), chunk_delay_s=reply.chunk_delay_s)


GATE_TIMEOUT_S = 120.0  # a gate nobody opens lets the reply go on after this


def _schema_refusal(record: RecordedRequest) -> _Answer | None:
    """A strict ``json_schema`` a strict endpoint would refuse: its 400, as OpenAI words it."""
    schema = record.json_schema
    if record.response_format != "json_schema":
        return None
    if schema is None or not isinstance(schema.get("name"), str):
        return _error(400, "response_format json_schema needs a name and a schema")
    problems = strict_problems(schema.get("schema")) if schema.get("strict") else []
    if problems:
        message = f"Invalid schema for response_format '{schema['name']}': {problems[0]}"
        return _error(400, message, "invalid_response_format")
    return None


def _reply_breaks_schema(record: RecordedRequest, reply: Reply) -> _Answer | None:
    """A scripted reply a strict endpoint could not have sent: a 400 that fails the test."""
    schema = record.json_schema
    if schema is None or not schema.get("strict") or reply.kind != "text":
        return None
    try:
        problems = check(json.loads(reply.content or ""), schema.get("schema") or {})
    except ValueError:
        problems = ["the reply is not JSON"]
    if not problems:
        return None
    message = f"the scripted reply breaks the requested schema: {problems[0]}"
    return _error(400, message, "scripted_reply_breaks_schema")


_FAULTS: dict[str, Reply] = {
    "429": Reply.fault(429, retry_after=1),
    "500": Reply.fault(500),
    "timeout": Reply.hang(30.0),
    "malformed": Reply.malformed(),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API, so connection pooling is tested
    # Headers and body go out in two writes; with Nagle on, delayed ACKs stall each reply ~40 ms.
    disable_nagle_algorithm = True
    scripted: ScriptedModelServer  # set on a per-server subclass made in start()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def handle(self) -> None:
        # Timing out clients close the socket mid-answer; that is the point of hang replies,
        # so a vanished peer is normal here, not worth a traceback.
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        scripted = self.scripted
        record, answer = scripted._handle(self.command, self.path, headers, raw)
        if answer.delay_s > 0:
            scripted._stopping.wait(answer.delay_s)
        # Logged before writing: once the client has the reply, the test may check the log.
        scripted._answered(record, answer.status)
        if answer.events:
            self._stream(record, answer)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.retry_after is not None:
            self.send_header("Retry-After", f"{answer.retry_after:g}")
        self.end_headers()
        self.wfile.write(answer.body)

    def _stream(self, record: RecordedRequest, answer: _Answer) -> None:
        """Write SSE events one by one (chunked, as the API does), pausing between them."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for data, piece in answer.events:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            if piece:
                record.chunks_sent.append((time.time(), piece))
                if answer.gate is not None and len(record.chunks_sent) == answer.gate_after:
                    answer.gate.wait(GATE_TIMEOUT_S)
            if answer.chunk_delay_s > 0 and self.scripted._stopping.wait(answer.chunk_delay_s):
                self.close_connection = True  # the server stops: drop the reply
                return
        if answer.abort_after is not None:
            self.close_connection = True  # dropped mid-reply: no terminating chunk
            return
        self.wfile.write(b"0\r\n\r\n")


def _reply_from_spec(spec: Mapping[str, Any]) -> Reply:
    """``{"purpose": p, "kind": k, **kw}`` from a ``--script`` file means ``Reply.<k>(**kw)``."""
    kind = spec.get("kind", "text")
    if kind not in ("text", "json", "tool_calls", "fault", "malformed", "truncated", "hang", "cut"):
        raise ValueError(f"unknown reply kind {kind!r}")
    kwargs = {k: v for k, v in spec.items() if k not in ("purpose", "kind")}
    if "usage" in kwargs:
        kwargs["usage"] = tuple(kwargs["usage"])
    factory: Callable[..., Reply] = getattr(Reply, kind)
    return factory(**kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, printing ``READY <base_url>`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help="JSON list of scripted replies")
    parser.add_argument("--delay", type=float, default=0.0, help="latency added to every reply")
    args = parser.parse_args(argv)
    server = ScriptedModelServer(port=args.port, default_delay_s=args.delay)
    for spec in json.loads(args.script.read_text()) if args.script else []:
        server.enqueue(_reply_from_spec(spec), purpose=spec.get("purpose", "*"))
    with server, contextlib.suppress(KeyboardInterrupt):
        sys.stdout.write(f"READY {server.base_url}\n")
        sys.stdout.flush()
        threading.Event().wait()  # SIGTERM's default action ends the process, freeing the port
    return 0


if __name__ == "__main__":
    sys.exit(main())
