"""Model calls under the budget: reserve an upper bound, call, settle the actual usage.

The bound is computed from the prompt the workflow built (every UTF-8 byte counted as a
token, plus per-message overhead) and ``max_tokens``. A call whose bound does not fit is
routed to a cheaper model if one fits; otherwise the run is stopped by raising
`BudgetStop` (the caller may first ask a human for more). A permanent model error moves
to the route's next fallback model.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from durable_agents._domain.budget import BudgetExceededError, Usage
from durable_agents._domain.errors import ErrorType
from durable_agents._domain.llm import LlmCall, LlmResult, Message, call_cost_bound
from durable_agents._domain.prices import ModelPrice
from durable_agents._domain.spec import Purpose
from durable_agents._workflows.activity_options import llm_options
from durable_agents._workflows.prompt_memory import PromptMemory
from durable_agents._workflows.run_events import RunEvents
from durable_agents._workflows.state import RunState

R = TypeVar("R", bound=BaseModel)


class BudgetStop(Exception):  # noqa: N818 - a control-flow signal, not an error
    """No model fits the remaining budget; the run must stop with a partial report."""


class _PromptNotStored(Exception):  # noqa: N818 - a control-flow signal
    """The activity could not resolve a reference this workflow believed stored."""


def usage_of(result: LlmResult, price: ModelPrice) -> Usage:
    """What a finished call consumed, priced at the *requested* model's price.

    Providers report dated model names (``gpt-4o-mini-2024-07-18``); pricing by the
    reported name would miss the table and leave spend unaccounted. A cache hit reached
    no model: it costs no tokens and counts as a hit.
    """
    if result.cached:
        return Usage(llm_calls=1, cache_hits=1)
    return Usage(
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_micros=price.cost_micros(result.input_tokens, result.output_tokens),
        llm_calls=1,
    )


def is_cancellation(err: ActivityError) -> bool:
    """An activity that ended because the run was cancelled."""
    return isinstance(err.cause, CancelledError)


def error_type(err: BaseException) -> str | None:
    """The ApplicationError type at the root of an activity failure, if any."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause.type if isinstance(cause, ApplicationError) else None


class ModelCaller:
    """Runs model activities for one run, keeping its ledger exact."""

    def __init__(
        self,
        state: RunState,
        on_soft_limit: Callable[[], Awaitable[None]] | None = None,
        on_pressure: Callable[[str], Awaitable[bool]] | None = None,
        *,
        events: RunEvents | None = None,
    ) -> None:
        self._state = state
        self._events = events  # None: the run does not stream its model calls
        self._on_soft_limit = on_soft_limit
        self.on_pressure = on_pressure
        self._memory = PromptMemory()

    def _candidates(self, purpose: Purpose) -> list[str]:
        route = self._state.spec.models.route(purpose)
        cheaper = [m for m in self._state.spec.models.cheaper if m not in route.chain]
        return [*route.chain, *cheaper]

    async def call(
        self,
        activity: str,
        purpose: Purpose,
        messages: list[Message],
        result_type: type[R],
        label: str,
        *,
        json_mode: bool = False,
        json_schema: Callable[[], dict[str, Any] | None] | None = None,
        result_of: Callable[[R], LlmResult],
    ) -> tuple[R, Usage]:
        """Call ``activity`` with the first model that fits; under pressure ask for more.

        ``json_schema`` builds the reply's structured-output schema, asked only when the
        purpose's route says its endpoint supports structured outputs.
        """
        asked = False
        while True:
            try:
                return await self._call_once(
                    activity,
                    purpose,
                    messages,
                    result_type,
                    label,
                    json_mode=json_mode,
                    json_schema=json_schema,
                    result_of=result_of,
                )
            except _PromptNotStored:
                # A worker with its own store, or a store that lost data, or prompts
                # laid out differently by a newer deployment: resend inline once (the
                # memory is empty now, so this call cannot land here again).
                workflow.logger.warning(
                    "prompt parts missing from the payload store: resending %s inline", label
                )
                self._memory.forget()
            except BudgetStop as stop:
                if asked or self.on_pressure is None or not await self.on_pressure(str(stop)):
                    raise
                asked = True

    async def _call_once(
        self,
        activity: str,
        purpose: Purpose,
        messages: list[Message],
        result_type: type[R],
        label: str,
        *,
        json_mode: bool,
        json_schema: Callable[[], dict[str, Any] | None] | None,
        result_of: Callable[[R], LlmResult],
    ) -> tuple[R, Usage]:
        spec = self._state.spec
        route = spec.models.route(purpose)
        schema = json_schema() if json_schema is not None and route.structured_outputs else None
        chain, extra = route.chain, self._candidates(purpose)[len(route.chain) :]
        built, messages = messages, self._memory.compact(messages)
        refusal = ""
        tried_permanent: list[str] = []
        for model in [*chain, *extra]:
            bound = call_cost_bound(messages, route.max_tokens, spec.prices[model])
            key = self._state.next_call_id("llm")
            try:
                self._state.ledger.reserve(key, bound)
            except BudgetExceededError as err:
                refusal = str(err)
                continue  # a cheaper model further down may still fit
            call = LlmCall(
                purpose=purpose.value,
                agent=spec.name,
                model=model,
                messages=messages,
                max_tokens=route.max_tokens,
                temperature=route.temperature,
                json_mode=json_mode,
                json_schema=schema,
                cacheable=route.cacheable,
                label=label,
                stream_key=self._events.open_call(key, label, purpose.value)
                if self._events
                else "",
            )
            try:
                reply = await workflow.execute_activity(
                    activity,
                    call,
                    result_type=result_type,
                    **llm_options(spec.llm, activity_id=key, summary=f"llm {label} ({model})"),
                )
            except ActivityError as err:
                if self._events is not None:
                    self._events.close_call(key, attempt=0, failed=True)
                self._state.ledger.release(key)
                if is_cancellation(err):
                    raise asyncio.CancelledError("run cancelled") from err
                if error_type(err) == ErrorType.PAYLOAD_MISSING and messages != built:
                    raise _PromptNotStored() from err
                if error_type(err) == ErrorType.MODEL_REJECTED and model != [*chain, *extra][-1]:
                    tried_permanent.append(f"{model}: {err.cause}")
                    continue
                raise
            self._memory.learn(built)
            if self._events is not None:
                answered = result_of(reply)
                self._events.close_call(
                    key,
                    attempt=answered.attempt,
                    text=answered.text,
                    sha256=answered.text_sha256,
                    chars=answered.text_chars,
                )
            actual = usage_of(result_of(reply), spec.prices[model])
            self._state.add_model_usage(model, actual)
            if self._state.ledger.settle(key, actual) and self._on_soft_limit is not None:
                await self._on_soft_limit()
            return reply, actual
        if tried_permanent and not refusal:
            raise ApplicationError("every model in the route failed: " + "; ".join(tried_permanent))
        raise BudgetStop(refusal or "no model fits the remaining budget")
