"""The Web UI links agentctl prints, as the README shows them (no server needed)."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from durable_agents._client.web_ui import list_url, run_url, status_url
from durable_agents._domain import contract
from durable_agents._domain.run import RunStatus

README = Path(__file__).parents[1] / "README.md"
UI = "http://127.0.0.1:8233"


def test_a_run_link_opens_its_user_metadata_tab_and_escapes_the_ids() -> None:
    assert run_url(UI + "/", "default", "run-a/b", "01a2") == (
        f"{UI}/namespaces/default/workflows/run-a%2Fb/01a2/user-metadata"
    )
    assert run_url(UI, "default", "run-1", None) == f"{UI}/namespaces/default/workflows/run-1"


def test_a_status_link_filters_agent_runs_by_agent_status() -> None:
    url = status_url(UI, "default", RunStatus.BUDGET_EXHAUSTED)
    assert parse_qs(urlsplit(url).query)["query"] == [
        f'WorkflowType="{contract.AGENT_RUN}" AND ({contract.AGENT_STATUS}="budget_exhausted")'
    ]
    terminated = status_url(UI, "default", RunStatus.TERMINATED)
    assert 'ExecutionStatus="Terminated"' in parse_qs(urlsplit(terminated).query)["query"][0]
    assert list_url(UI, "default") == f"{UI}/namespaces/default/workflows"


def test_the_readme_shows_the_link_agentctl_prints() -> None:
    assert status_url(UI, "default", RunStatus.BUDGET_EXHAUSTED) in README.read_text()
