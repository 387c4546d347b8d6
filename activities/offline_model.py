"""The deterministic offline model used when no API key is configured.

It is not a language model: each agent plugin supplies a *policy* that reads the
observations in the conversation (the JSON block every prompt carries) and decides the
next plan or writes the answer from them. Same conversation, same reply, every time.
Agents without a policy get a generic one that ends the run with a plain summary.
"""

import json
from collections.abc import Callable, Mapping

from durable_agents._activities.openai_provider import ProviderReply, TextSink
from durable_agents._domain.llm import LlmCall
from durable_agents._domain.prompts import parse_observations
from durable_agents._domain.spec import Purpose

OfflinePolicy = Callable[[LlmCall, str], str]
OFFLINE_MODEL = "offline"


def generic_policy(call: LlmCall, prompt: str) -> str:
    """End the run at once and summarise whatever was observed."""
    if call.purpose == Purpose.PLAN:
        return json.dumps(
            {
                "rationale": "the offline model has no policy for this agent",
                "done": True,
                "tasks": [],
            }
        )
    observations = parse_observations(prompt)
    lines = [f"- {o.get('call')}: {o.get('outcome')}" for o in observations]
    return "Offline model summary.\n" + ("\n".join(lines) or "Nothing was done.")


class OfflineProvider:
    """A `ModelProvider` that answers from per-agent policies, without a network."""

    def __init__(self, policies: Mapping[str, OfflinePolicy]) -> None:
        self._policies = dict(policies)

    async def complete(
        self, call: LlmCall, messages: list[dict[str, str]], on_text: TextSink | None = None
    ) -> ProviderReply:
        """Decide from the last user message; usage is counted like a real model's. The
        whole text goes to ``on_text`` at once (it is not written piece by piece)."""
        prompt = messages[-1]["content"] if messages else ""
        text = self._policies.get(call.agent, generic_policy)(call, prompt)
        if on_text is not None:
            on_text(text)
        prompt_bytes = sum(len(m["content"].encode()) for m in messages)
        return ProviderReply(
            text=text,
            model=OFFLINE_MODEL,
            input_tokens=(prompt_bytes + 3) // 4,
            output_tokens=min(call.max_tokens, max(1, (len(text.encode()) + 3) // 4)),
            finish_reason="stop",
        )
