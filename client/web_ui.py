"""Links into the Temporal Web UI (2.42.1, served by the pinned CLI's dev server).

Every link ``agentctl`` and the demo print is built here. What the UI offers, read from
its route table: a run's tabs are paths under ``/namespaces/NS/workflows/WID/RUN_ID/``
(``history``, the default, ``user-metadata``, ``search-attributes``, ``memo``, ...). The
``user-metadata`` tab is where a run's story is: its static summary and details and the
live current details (status, spend, the pending approval and the commands that answer
it). A tab needs the run id: ``/workflows/WID`` alone redirects to the latest run's
history, dropping anything after the id. The list page ``/namespaces/NS/workflows``
filters by a visibility ``query`` parameter (shown as a filter); its columns are a
per-browser setting with no URL, so a status is linked as a filtered list.
"""

from urllib.parse import quote

from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus

STORY_TAB = "user-metadata"


def run_url(ui_base: str, namespace: str, workflow_id: str, run_id: str | None) -> str:
    """The run's story (the User Metadata tab); without a run id, its latest history."""
    page = f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
    page += quote(workflow_id, safe="")
    return f"{page}/{quote(run_id, safe='')}/{STORY_TAB}" if run_id else page


def list_url(ui_base: str, namespace: str, query: str = "") -> str:
    """The list of runs matching a visibility ``query`` (all workflows when empty)."""
    page = f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows"
    return f"{page}?query={quote(query, safe='')}" if query else page


def status_clause(status: RunStatus) -> str:
    """The visibility clause for runs in ``status`` (terminated: ended from outside, so
    no run set its AgentStatus)."""
    if status is RunStatus.TERMINATED:
        return 'ExecutionStatus="Terminated"'
    return f'{contract.AGENT_STATUS}="{status.value}"'


def runs_query(*clauses: str) -> str:
    """A visibility query for agent runs (no other workflow type) matching every clause."""
    return " AND ".join([f'WorkflowType="{contract.AGENT_RUN}"', *(f"({c})" for c in clauses if c)])


def status_url(ui_base: str, namespace: str, status: RunStatus) -> str:
    """The Web UI's list of the runs in ``status``, exactly those."""
    return list_url(ui_base, namespace, runs_query(status_clause(status)))
