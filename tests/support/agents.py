"""The Python API for tests: starts runs of specs a test builds, on its in-process worker.

Callers outside the worker can only name agents; a test that varies an agent (another
approval policy, a tighter budget) loads the variant into its worker's catalog first.
"""

from temporalio.client import Client

from durable_agents._activities.catalog import Catalog
from durable_agents._client.api import AgentsClient, RunHandle
from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.spec import AgentSpec


class LocalAgents(AgentsClient):
    """`AgentsClient` plus the catalog of the in-process worker it talks to."""

    def __init__(self, client: Client, catalog: Catalog, task_queue: str) -> None:
        super().__init__(client, task_queue)
        self.catalog = catalog

    def resolve(self, agent: str | AgentSpec, model: str | None = None) -> AgentSpec:
        """The priced spec the worker would run for ``agent``."""
        if isinstance(agent, AgentSpec):
            return self.catalog.priced(agent)
        return self.catalog.resolve(agent, model=model)

    async def start_run(  # type: ignore[override]
        self,
        agent: str | AgentSpec,
        goal: str,
        *,
        request_id: str | None = None,
        user: str = "anonymous",
        budget: BudgetOverride | None = None,
        model: str | None = None,
    ) -> RunHandle:
        """Start a run of ``agent``; a spec is loaded into the worker's catalog first."""
        name = self.catalog.add(agent) if isinstance(agent, AgentSpec) else agent
        return await super().start_run(
            name, goal, request_id=request_id, user=user, budget=budget, model=model
        )
