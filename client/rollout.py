"""Canary rollouts with Temporal's Worker Versioning: which version of a Worker Deployment
new runs go to, and how each version's runs are doing.

Workers register a version (``AGENT_DEPLOYMENT``, ``AGENT_BUILD_ID``); a run starts on
the current version, or on the ramping one for its share of new runs, and stays pinned to
the version it started on, so a rollback only moves new runs: runs in flight finish on the
code they started with (their histories replay only there).
"""

from dataclasses import dataclass

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from durable_agents._domain import contract
from durable_agents._domain import search_attributes as sa
from durable_agents._domain.rollout import (
    UNVERSIONED,
    FinishedRun,
    RolloutStatus,
    VersionFigures,
    figures,
)

IDENTITY = "agentctl rollout"
_ROLE = {
    "WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT": "current",
    "WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING": "ramping",
    "WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING": "draining",
    "WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED": "drained",
    "WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE": "inactive",
}


class RolloutError(LookupError):
    """A rollout step that cannot be taken; the message says what to do instead."""


@dataclass
class Rollout:
    """Drive and inspect one Worker Deployment's rollout."""

    temporal: Client
    deployment: str
    figures_limit: int = 1000

    async def _describe(self) -> WorkerDeploymentInfo:
        try:
            answer = await self.temporal.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=self.temporal.namespace, deployment_name=self.deployment
                )
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise RolloutError(
                    f"no Worker Deployment '{self.deployment}': start a worker with "
                    f"AGENT_DEPLOYMENT={self.deployment} and AGENT_BUILD_ID set"
                ) from None
            raise
        return answer.worker_deployment_info

    async def status(self) -> RolloutStatus:
        """Where new runs go, and each version's runs in flight and finished."""
        info = await self._describe()
        routing = info.routing_config
        current = routing.current_deployment_version.build_id or None
        ramping = routing.ramping_deployment_version.build_id or None
        versions = []
        for v in sorted(info.version_summaries, key=lambda v: v.create_time.ToDatetime()):
            build = v.deployment_version.build_id
            role = _ROLE.get(WorkerDeploymentVersionStatus.Name(v.status), "unknown")
            ramp = routing.ramping_version_percentage if build == ramping else 0.0
            versions.append(await self._figures(build, role, ramp))
        return RolloutStatus(
            deployment=self.deployment,
            current=current,
            ramping=ramping,
            ramp_percent=routing.ramping_version_percentage if ramping else 0.0,
            versions=versions,
        )

    async def _figures(self, build_id: str, role: str, ramp: float) -> VersionFigures:
        pinned = (
            f"WorkflowType = '{contract.AGENT_RUN}' AND "
            f"{contract.WORKER_DEPLOYMENT_VERSION} = '{self.deployment}:{build_id}'"
        )
        running = await self.temporal.count_workflows(f"{pinned} AND ExecutionStatus = 'Running'")
        finished = [
            FinishedRun(
                status=wf.typed_search_attributes.get(sa.AGENT_STATUS)
                or (wf.status.name.lower() if wf.status else "unknown"),
                cost_usd=wf.typed_search_attributes.get(sa.COST_USD) or 0.0,
            )
            async for wf in self.temporal.list_workflows(
                f"{pinned} AND ExecutionStatus != 'Running'", limit=self.figures_limit
            )
        ]
        return figures(build_id, role, ramp, running.count, finished)

    async def ramp(self, percent: float, build_id: str | None = None) -> str:
        """Send ``percent`` of new runs to ``build_id`` (default: the newest version that
        is not current); returns the version ramped."""
        if not 0 < percent <= 100:
            raise RolloutError(f"{percent} is not a share of runs: give more than 0, up to 100")
        info = await self._describe()
        target = build_id or _newest_not_current(info)
        await self.temporal.workflow_service.set_worker_deployment_ramping_version(
            SetWorkerDeploymentRampingVersionRequest(
                namespace=self.temporal.namespace,
                deployment_name=self.deployment,
                build_id=target,
                percentage=percent,
                identity=IDENTITY,
            )
        )
        return target

    async def promote(self, build_id: str | None = None) -> str:
        """Make ``build_id`` (default: the ramping version) current: every new run goes to
        it. Returns the version promoted."""
        info = await self._describe()
        target = build_id or info.routing_config.ramping_deployment_version.build_id
        if not target:
            raise RolloutError("no version is ramping: name one with --build-id")
        await self._set_current(target)
        return target

    async def rollback(self, to: str | None = None) -> str:
        """New runs back at once: a ramp is ended, else the previous current version is
        made current again (or ``to``). Runs in flight stay on their version. Returns where
        new runs go now."""
        info = await self._describe()
        routing = info.routing_config
        if routing.ramping_deployment_version.build_id and to is None:
            await self.temporal.workflow_service.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace=self.temporal.namespace,
                    deployment_name=self.deployment,
                    build_id="",
                    identity=IDENTITY,
                )
            )
            return routing.current_deployment_version.build_id or UNVERSIONED
        target = to or _previous_current(info)
        await self._set_current(target)
        return target

    async def _set_current(self, build_id: str) -> None:
        await self.temporal.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=self.temporal.namespace,
                deployment_name=self.deployment,
                build_id=build_id,
                identity=IDENTITY,
            )
        )


def _newest_not_current(info: WorkerDeploymentInfo) -> str:
    current = info.routing_config.current_deployment_version.build_id
    others = [v for v in info.version_summaries if v.deployment_version.build_id != current]
    if not others:
        raise RolloutError(
            "every registered version is current: start workers of the new version "
            "(AGENT_BUILD_ID) first"
        )
    return max(others, key=lambda v: v.create_time.ToDatetime()).deployment_version.build_id


def _previous_current(info: WorkerDeploymentInfo) -> str:
    """The version most recently replaced: the last to stop taking new runs (the server
    records when each version was deactivated; it keeps no history of current ones)."""
    current = info.routing_config.current_deployment_version.build_id
    before = [
        v
        for v in info.version_summaries
        if v.deployment_version.build_id != current and v.HasField("last_deactivation_time")
    ]
    if not before:
        raise RolloutError("no version took new runs before this one: name one with --to")
    latest = max(before, key=lambda v: v.last_deactivation_time.ToDatetime())
    return latest.deployment_version.build_id
