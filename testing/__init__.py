"""Test your own agents on the real runtime: ``durable_agents.testing``.

- `agent_test_env`: an async context manager starting a Temporal dev server, a worker
  serving your plugins (in this process) and a client; its `AgentTestEnv` approves,
  rejects and reads reports.
- `ScriptedModelServer` and `Reply`: an OpenAI-compatible HTTP server whose answers you
  script, so the worker's real ``openai`` client is exercised end to end.
- `pending_request` and `report_within`: the same waits, for an `AgentsClient` of yours.

Everything runs for real (server, worker, sandbox, activities); only the model's replies
are scripted. See docs/guide.md for a complete agent and its test.
"""

from durable_agents.testing.environment import (
    AgentTestEnv,
    agent_test_env,
    pending_request,
    report_within,
)
from durable_agents.testing.scripted_model import RecordedRequest, Reply, ScriptedModelServer

__all__ = [
    "AgentTestEnv",
    "RecordedRequest",
    "Reply",
    "ScriptedModelServer",
    "agent_test_env",
    "pending_request",
    "report_within",
]
