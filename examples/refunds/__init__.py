"""The refunds agent of docs/guide.md: looks an order up, refunds it after a person approves."""

import json
import re

from pydantic import BaseModel, Field

from durable_agents import (
    AgentPlugin, AgentSpec, ApprovalPolicy, Budget, LlmCall, ModelRouting, OnTimeout, Purpose,
    SideEffect, ToolContext, ToolInputError, ToolRegistry, parse_observations,
)  # fmt: skip

ORDERS = {"A-100": 40.0, "A-101": 12.5}  # a real agent reads your order system
tools = ToolRegistry()


class OrderArgs(BaseModel):
    order_id: str = Field(pattern=r"^A-\d{3}$")


class RefundArgs(OrderArgs):
    amount_usd: float = Field(gt=0)


def refunds_made(ctx: ToolContext) -> list[dict[str, object]]:
    log = ctx.data_dir / "refunds.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@tools.tool(side_effect=SideEffect.READ)
async def lookup_order(args: OrderArgs, ctx: ToolContext) -> dict[str, object]:
    """The order's amount in USD and the refunds already made."""
    if args.order_id not in ORDERS:
        raise ToolInputError(f"no order {args.order_id}")  # told to the planner, not retried
    made = [r for r in refunds_made(ctx) if r["order_id"] == args.order_id]
    return {"order_id": args.order_id, "amount_usd": ORDERS[args.order_id], "refunds": made}


@tools.tool(side_effect=SideEffect.IRREVERSIBLE, resource_arg="order_id", timeout_s=20)
async def refund(args: RefundArgs, ctx: ToolContext) -> dict[str, object]:
    """Refund amount_usd of the order. Irreversible, so a person approves every call."""
    if args.amount_usd > ORDERS.get(args.order_id, 0):
        raise ToolInputError("a refund cannot exceed the order's amount")
    # A retried call carries the same idempotency key: pass it to your payment API.
    if all(r["key"] != ctx.idempotency_key for r in refunds_made(ctx)):
        with (ctx.data_dir / "refunds.jsonl").open("a") as log:
            log.write(json.dumps({**args.model_dump(), "key": ctx.idempotency_key}) + "\n")
    return {"refunded_usd": args.amount_usd, "order_id": args.order_id}


def build_spec() -> AgentSpec:
    return AgentSpec(
        name="refunds",
        description="Refunds an order after checking it; a person approves every refund.",
        system_prompt="You handle refund requests. Look the order up first, then refund at "
        "most its amount, once. Answer with what was refunded.",
        tools=tools.specs(),
        models=ModelRouting.single("gpt-4o-mini", max_tokens=1024),
        budget=Budget(max_cost_usd=0.05, max_iterations=4),
        approvals=ApprovalPolicy(approvers=["finance"], on_timeout=OnTimeout.DENY),
    )


def offline_policy(call: LlmCall, prompt: str) -> str:
    """Without an API key the worker's offline model answers from this: a plan is the JSON
    of PLAN_FORMAT, decided from the goal and the observations the prompt carries."""
    seen = {o["task"]: o for o in parse_observations(prompt)}
    if call.purpose != Purpose.PLAN:
        return "; ".join(f"{t}: {o['outcome']}" for t, o in seen.items()) or "nothing done"
    order = re.search(r"A-\d{3}", prompt.split("GOAL: ", 1)[-1])
    if order is None or "refund" in seen:
        return json.dumps({"rationale": "nothing (more) to do", "done": True, "tasks": []})
    args = {"order_id": order.group()}
    if "lookup" not in seen:
        task = {"id": "lookup", "tool": "lookup_order", "args": args}
        return json.dumps({"rationale": "check the order", "done": False, "tasks": [task]})
    amount = seen["lookup"]["output"]["amount_usd"]
    task = {"id": "refund", "tool": "refund", "args": {**args, "amount_usd": amount}}
    return json.dumps({"rationale": "refund it in full", "done": True, "tasks": [task]})


PLUGIN = AgentPlugin(
    name="refunds", build_spec=build_spec, tools=tools, offline_policy=offline_policy
)
