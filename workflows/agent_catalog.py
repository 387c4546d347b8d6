"""``AgentCatalog``: asks a worker on the queue which agents it serves.

``agentctl agents`` and `AgentsClient.agents` start one and read its result: the answer
comes from a live worker's catalog (what runs on that queue may name), so the caller never
imports plugin or tool code and never lists an agent no worker serves.
"""

from datetime import timedelta

from temporalio import workflow

from durable_agents._domain import contract
from durable_agents._domain.admission import AgentSummary


@workflow.defn(name=contract.AGENT_CATALOG)
class AgentCatalog:
    """One question, one local activity on the worker that picks it up."""

    @workflow.run
    async def run(self) -> list[AgentSummary]:
        """The agents of the worker's catalog."""
        agents: list[AgentSummary] = await workflow.execute_local_activity(
            contract.DESCRIBE_AGENTS,
            result_type=list[AgentSummary],
            start_to_close_timeout=timedelta(seconds=12),  # MCP servers: 8 s at most
        )
        return agents
