"""The activities of an agent run: ``plan``, ``llm_complete`` and ``invoke_tool``.

They are methods of one object so the worker can hand them their dependencies (model
provider, tool registry, payload store) explicitly: no module-level clients, nothing
read from the environment at import time.
"""

import asyncio
import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import accumulate, groupby
from pathlib import Path
from typing import Any

import pydantic
from opentelemetry.trace import Tracer
from temporalio import activity
from temporalio.exceptions import ApplicationError

from durable_agents._activities.circuit_breaker import (
    CircuitBreakers,
    CircuitOpenError,
    to_application_error,
)
from durable_agents._activities.instrumentation import (
    observe_llm_call,
    observe_tool_call,
    record_cache_hit,
)
from durable_agents._activities.mcp_toolbox import McpToolbox, McpToolGone
from durable_agents._activities.openai_provider import ModelProvider, ProviderReply, TextSink
from durable_agents._activities.payload_store import DEFAULT_INLINE_LIMIT, PayloadStore, preview_of
from durable_agents._activities.response_cache import CachedReply, ResponseCache
from durable_agents._activities.token_stream import TokenHeartbeat
from durable_agents._activities.tool_api import (
    RegisteredTool,
    ToolContext,
    ToolFailedError,
    ToolInputError,
    ToolRegistry,
    ToolUnavailable,
)
from durable_agents._domain import contract
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.evaluation import EvalReply, Judgement
from durable_agents._domain.events import text_digest
from durable_agents._domain.llm import (
    LlmCall,
    LlmResult,
    Message,
    Part,
    PayloadRef,
    is_kept,
    run_joins,
)
from durable_agents._domain.plan import Plan, PlanReply
from durable_agents._domain.structured import drop_nulls
from durable_agents._domain.tools import ToolCall, ToolResult


@dataclass
class AgentActivities:
    """Holds what the activities need; register ``activities()`` on a worker."""

    provider: ModelProvider
    tools: ToolRegistry
    store: PayloadStore
    data_dir: Path
    inline_limit: int = DEFAULT_INLINE_LIMIT
    # One breaker set per worker process, shared by every call of every run.
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    # None: no caching. `provider_id` keeps replies of different endpoints apart.
    cache: ResponseCache | None = None
    provider_id: str = ""
    # None: the process-wide tracer (see workers.telemetry.client_tracer).
    tracer: Tracer | None = None
    # The worker's MCP connections: tools of a run's MCP servers are called through it.
    mcp: McpToolbox | None = None

    def activities(self) -> list[Any]:
        """The activity callables to register on a worker."""
        return [self.plan, self.llm_complete, self.evaluate, self.invoke_tool]

    def render(self, messages: list[Message]) -> list[dict[str, str]]:
        """Messages as the provider takes them: references resolved, kept parts stored."""
        rendered = []
        for m in messages:
            pieces = [(is_kept(p), self._texts_of(p)) for p in m.parts]
            for kept, run in groupby(pieces, key=lambda piece: piece[0]):
                if kept:  # later prompts may send the run, or its tail, as one reference
                    texts = [text for _, part_texts in run for text in part_texts]
                    for text in run_joins(texts):
                        self.store.put(text.encode(), "")
            content = [m.text, *("".join(texts) for _, texts in pieces)]
            content += ["\n" + self._stored(a) for a in m.attachments]
            rendered.append({"role": m.role, "content": "".join(content)})
        return rendered

    def _texts_of(self, part: Part) -> list[str]:
        """The text of a part; of a reference to joined parts, each of them."""
        if part.ref:
            data = self._stored(PayloadRef(key=part.ref, size_bytes=part.size)).encode()
            ends = list(accumulate(part.lengths or [len(data)]))
            return [data[a:b].decode() for a, b in zip([0, *ends], ends, strict=False)]
        if part.keep:  # later prompts may send only its reference
            self.store.put(part.text.encode(), "")
        return [part.text]

    def _stored(self, ref: PayloadRef) -> str:
        try:
            return self.store.get(ref).decode()
        except KeyError as err:
            raise ApplicationError(
                f"{err.args[0]}: every worker of a deployment must share one payload store "
                "($AGENT_DATA_DIR/payloads on a shared volume)",
                type=ErrorType.PAYLOAD_MISSING,
            ) from None

    async def _complete(self, call: LlmCall) -> tuple[ProviderReply, LlmResult]:
        """The model's answer to ``call``; its text streamed to the run if it asks so."""
        if not call.stream_key or not activity.in_activity():
            return await self._answer(call, None)
        async with TokenHeartbeat(call.label, call.purpose) as sender:
            reply, result = await self._answer(call, sender.add, sender.details)
        # Which attempt answered, and its text's digest: clients keep that attempt's text
        # and check it (see domain.events).
        answered = {
            "attempt": activity.info().attempt,
            "text_sha256": text_digest(reply.text),
            "text_chars": len(reply.text),
        }
        return reply, result.model_copy(update=answered)

    async def _answer(
        self,
        call: LlmCall,
        on_text: TextSink | None,
        details: Callable[[], tuple[Any, ...]] = tuple,
    ) -> tuple[ProviderReply, LlmResult]:
        messages = self.render(call.messages)
        key: str | None = None
        if self.cache is not None and call.cacheable and call.temperature == 0:
            key = ResponseCache.key(
                call.model,
                messages,
                call.max_tokens,
                call.temperature,
                call.json_mode,
                provider=self.provider_id,
                json_schema=call.json_schema,
            )
            hit = await self.cache.get(key)
            if hit is not None:
                reply = ProviderReply(
                    text=hit.text,
                    model=hit.model,
                    input_tokens=hit.input_tokens,
                    output_tokens=hit.output_tokens,
                    finish_reason=hit.finish_reason,
                )
                record_cache_hit(call, reply, self.provider_id, self.tracer)
                if on_text is not None:
                    on_text(reply.text)
                return reply, _result_of(reply, cached=True)
        with observe_llm_call(call, self.provider_id, self.tracer) as seen:
            timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
            # A dead worker's call is retried within it; the beats carry the streamed text.
            beat = _start_heartbeat(timeout, details)
            try:
                reply = await self.provider.complete(call, messages, on_text)
            finally:
                await _stop_heartbeat(beat)
            seen.replied(reply)
        if self.cache is not None and key is not None:
            # put() skips replies whose finish_reason is not "stop".
            await self.cache.put(
                key,
                CachedReply(
                    text=reply.text,
                    model=reply.model,
                    finish_reason=reply.finish_reason,
                    input_tokens=reply.input_tokens,
                    output_tokens=reply.output_tokens,
                ),
            )
        return reply, _result_of(reply, cached=False)

    @activity.defn(name=contract.LLM_COMPLETE)
    async def llm_complete(self, call: LlmCall) -> LlmResult:
        """One model call. Replies over the inline limit go to the payload store."""
        reply, result = await self._complete(call)
        data = reply.text.encode()
        if len(data) > self.inline_limit:
            ref = self.store.put(data, preview_of(reply.text))
            # The preview travels once, as the text; the reference itself stays bare.
            bare = ref.model_copy(update={"preview": ""})
            result = result.model_copy(update={"text": ref.preview, "ref": bare})
        return result

    @activity.defn(name=contract.PLAN)
    async def plan(self, call: LlmCall) -> PlanReply:
        """Ask the planning model for a plan and parse it against the `Plan` schema.

        A reply that is not a valid plan is *not* an activity failure: the call worked and
        cost tokens, so the problems are returned for the workflow to send back to the
        planner (a semantic error is answered by replanning, not by a blind retry).
        """
        reply, result = await self._complete(call)
        if reply.finish_reason == "length":
            return PlanReply(
                plan=None,
                problems=[f"the reply was cut at max_tokens={call.max_tokens}; plan fewer tasks"],
                result=result,
            )
        try:
            data = json.loads(_strip_fences(reply.text))
            if call.json_schema is not None:
                data = _without_strict_nulls(data)
            plan = Plan.model_validate(data)
        except json.JSONDecodeError as err:
            return PlanReply(plan=None, problems=[f"the reply is not JSON: {err}"], result=result)
        except pydantic.ValidationError as err:
            problems = [
                f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in err.errors()
            ]
            return PlanReply(plan=None, problems=problems, result=result)
        # The parsed plan is the reply; its text would only repeat it in the history.
        return PlanReply(plan=plan, result=result.model_copy(update={"text": ""}))

    @activity.defn(name=contract.EVALUATE)
    async def evaluate(self, call: LlmCall) -> EvalReply:
        """Ask the evaluation model for a judgement on criteria code cannot check.

        An unreadable judgement is recorded as ``soft`` (a warning): a confused evaluator
        must not stop a run that may be fine, nor be retried blindly.
        """
        reply, result = await self._complete(call)
        try:
            data = json.loads(_strip_fences(reply.text))
            judgement = Judgement(data["judgement"])
            reason = str(data.get("reason", ""))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            return EvalReply(
                judgement=Judgement.SOFT, reason=f"unreadable evaluation: {err}", result=result
            )
        return EvalReply(judgement=judgement, reason=reason, result=result)

    @activity.defn(name=contract.INVOKE_TOOL)
    async def invoke_tool(self, call: ToolCall) -> ToolResult:
        """Run one tool call with its idempotency key; map its errors to typed failures."""
        info = activity.info()
        workflow_id = info.workflow_id or "standalone"
        key = f"{workflow_id}/{info.activity_id}"
        with observe_tool_call(call, key, info.attempt, self.tracer):
            return await self._invoke_tool(call, info, workflow_id, key)

    async def _invoke_tool(
        self, call: ToolCall, info: activity.Info, workflow_id: str, key: str
    ) -> ToolResult:
        try:
            tool = self._tool(call.tool)
            args = tool.args_model.model_validate(call.args)
        except ToolInputError as err:
            raise ApplicationError(
                str(err), type=ErrorType.UNKNOWN_TOOL, non_retryable=True
            ) from err
        except pydantic.ValidationError as err:
            raise ApplicationError(
                f"invalid arguments for {call.tool}: {err}",
                type=ErrorType.TOOL_INPUT,
                non_retryable=True,
            ) from err
        spec = tool.spec
        try:
            self.breakers.before_call(call.tool, spec.circuit_threshold, spec.circuit_reset_s)
        except CircuitOpenError as err:
            raise to_application_error(err) from err
        # True: the tool answered; False: it proved unhealthy; None: the outcome says
        # nothing about its health (bad input, its own "cannot work", a cancellation).
        healthy: bool | None = None
        ctx = ToolContext(
            idempotency_key=key,
            workflow_id=workflow_id,
            attempt=info.attempt,
            data_dir=self.data_dir,
            # A local activity cannot heartbeat: its workflow task's timeout stands in.
            heartbeat=_no_heartbeat if info.is_local else activity.heartbeat,
        )
        # The worker heartbeats while the tool runs, whatever the tool does (so a tool
        # whose worker died is retried after the heartbeat timeout, not its whole
        # timeout); a tool's own heartbeats, with details, go through ctx.heartbeat.
        beat = _start_heartbeat(info.heartbeat_timeout)
        try:
            output = await tool.fn(args, ctx)
            healthy = True
        except McpToolGone as err:  # the run reads its tool list again, then replans
            raise ApplicationError(
                str(err), type=ErrorType.MCP_TOOL_GONE, non_retryable=True
            ) from err
        except ToolInputError as err:
            raise ApplicationError(str(err), type=ErrorType.TOOL_INPUT, non_retryable=True) from err
        except ToolUnavailable as err:
            healthy = False
            delay = timedelta(seconds=err.retry_after_s) if err.retry_after_s else None
            raise ApplicationError(
                str(err), type=ErrorType.TOOL_UNAVAILABLE, next_retry_delay=delay
            ) from err
        except ToolFailedError as err:
            raise ApplicationError(
                str(err), type=ErrorType.TOOL_FAILED, non_retryable=True
            ) from err
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.timed_out:
                healthy = False  # a tool that hangs past its timeout is unhealthy
            raise
        except Exception:
            healthy = False  # an unexpected error: Temporal retries it like a transient one
            raise
        finally:
            await _stop_heartbeat(beat)
            if healthy is True:
                self.breakers.record_success(call.tool)
            elif healthy is False:
                self.breakers.record_failure(
                    call.tool, spec.circuit_threshold, spec.circuit_reset_s
                )
            else:
                self.breakers.release(call.tool)
        return self._tool_result(output, key).model_copy(update={"attempt": info.attempt})

    def _tool(self, name: str) -> RegisteredTool:
        """A plugin's tool, else an MCP server's; `ToolInputError` when neither has it."""
        if name not in self.tools and self.mcp is not None:
            found = self.mcp.tool(name)
            if found is not None:
                return found
        return self.tools.get(name)

    def _tool_result(self, output: Any, key: str) -> ToolResult:
        if isinstance(output, pydantic.BaseModel):
            output = output.model_dump(mode="json")
        text = json.dumps(output, ensure_ascii=False, default=str, sort_keys=True)
        if len(text.encode()) > self.inline_limit:
            ref = self.store.put(text.encode(), preview_of(text))
            bare = ref.model_copy(update={"preview": ""})
            return ToolResult(ref=bare, preview=ref.preview, idempotency_key=key)
        return ToolResult(output=json.loads(text), preview=preview_of(text), idempotency_key=key)


def _without_strict_nulls(data: Any) -> Any:
    """A strict-schema plan without the nulls it carries for every optional argument."""
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        for task in data["tasks"]:
            if isinstance(task, dict) and isinstance(task.get("args"), dict):
                task["args"] = drop_nulls(task["args"])
    return data


def _result_of(reply: ProviderReply, *, cached: bool) -> LlmResult:
    return LlmResult(
        model=reply.model,
        text=reply.text,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        finish_reason=reply.finish_reason,
        cached=cached,
    )


def _no_heartbeat(*details: Any) -> None:
    """What ``ToolContext.heartbeat`` does in a local activity."""


async def _stop_heartbeat(beat: "asyncio.Task[None] | None") -> None:
    if beat is not None:
        beat.cancel()
        with suppress(asyncio.CancelledError):
            await beat


def _start_heartbeat(
    timeout: timedelta | None, details: Callable[[], tuple[Any, ...]] = tuple
) -> "asyncio.Task[None] | None":
    """Heartbeat in the background so a dead worker is noticed within the timeout (each
    beat with ``details()``: a beat replaces the details of the one before)."""
    if not timeout:
        return None
    interval = max(timeout.total_seconds() / 3, 0.1)

    async def beat() -> None:
        while True:
            activity.heartbeat(*details())
            await asyncio.sleep(interval)

    return asyncio.create_task(beat())


def _strip_fences(text: str) -> str:
    """Models sometimes wrap JSON in Markdown fences; accept that."""
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        t = t.rsplit("```", 1)[0]
    return t
