"""The Temporal Web UI tells a run's story: checked in a real headless browser.

A run waiting for approval is opened in the dev server's Web UI (2.42.1). The History tab
(the default) shows each activity's summary in the timeline and in the event rows; the
User Metadata tab shows the run's static summary and details, the "Events with Metadata"
(activity and timer summaries), and the live "Current Details" Markdown with the pending
approval and the exact ``agentctl approve`` command. Markdown is rendered in iframes, so
the text is read from every frame. The list page's ``query`` parameter filters by search
attribute, as the README says.

The links ``agentctl`` prints are followed as a person would: ``status`` links the run's
User Metadata tab, where the story is without a click, and ``list`` links, per AgentStatus,
a filtered Web UI list that shows exactly the runs that ended that way (the UI's own
status column says "Completed" for every run that returned its report).
"""

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import expect

from durable_agents._devtools.dev_server import DevServer
from durable_agents._domain import contract
from durable_agents._domain.approvals import ApprovalPolicy
from durable_agents._domain.budget import Budget
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec import AgentSpec
from durable_agents.testing import pending_request, report_within
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.browser import TIMEOUT_MS, browser_page, find_chromium, wait_for_text
from tests.support.plans import plan_reply, tool_task

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "web-ui.png"
DOCS_LIST_SCREENSHOT = ROOT / "docs" / "web-ui-statuses.png"
GOAL = "record the fuel, then launch the apollo rocket"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed on first use; the tests skip only if that fails."""
    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    return path


def _script_fuel_then_launch(model: ScriptedModelServer) -> None:
    """Plan: a write tool, then an irreversible one (which waits for approval)."""
    model.enqueue(
        plan_reply(
            tool_task("fuel", "record_effect", name="fuel"),
            tool_task("go", "launch_rocket", depends_on=["fuel"], name="apollo"),
        ),
        plan_reply(done=True),
        purpose="plan",
    )
    model.enqueue(Reply.text("done"), purpose="summarize")


async def test_run_page_shows_summary_pending_approval_and_activity_summaries(
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    dev_server: DevServer,
    chromium: Path,
) -> None:
    _script_fuel_then_launch(model)
    spec = agents.catalog.plugin("test-agent").build_spec()
    handle = await agents.start_run(spec, GOAL, user="ana")
    wid = handle.workflow_id
    request = await pending_request(agents, wid)
    ARTIFACTS.mkdir(exist_ok=True)
    summary, tool, plan = f"test-agent: {GOAL}", "tool: record_effect(fuel)", "llm plan #1"

    async with browser_page(chromium) as page:
        await page.goto(dev_server.workflow_url(wid))
        # History tab: timeline rows "invoke_tool • tool: …" and each event's "Summary".
        await expect(page.get_by_role("heading", name="Event History")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        await wait_for_text(page, summary, tool, plan, f"approval {request.id} deadline")
        await page.screenshot(path=ARTIFACTS / "web-ui-history.png", full_page=True)

        await page.get_by_role("tab", name="User Metadata").click()
        await wait_for_text(
            page,
            "Current Details",
            summary,  # Summary (static)
            f"Goal {GOAL}",  # Details (static)
            tool,  # Events with Metadata
            plan,
            f"Waiting for approval {request.id}",  # Current Details (live)
            request.what,
            f"agentctl approve {wid} {request.id} --reason",
            f"agentctl reject {wid} {request.id} --reason",
        )
        await page.screenshot(path=ARTIFACTS / "web-ui-awaiting-approval.png", full_page=True)
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(ARTIFACTS / "web-ui-awaiting-approval.png", DOCS_SCREENSHOT)

        # The list page, filtered by search attribute through the URL (as in the README).
        query = quote(f'{contract.AGENT_STATUS}="awaiting_approval"', safe="")
        await page.goto(
            f"{dev_server.ui_url}/namespaces/{dev_server.namespace}/workflows?query={query}"
        )
        await expect(page.get_by_role("link", name=wid)).to_be_visible(timeout=TIMEOUT_MS)
        # ...because the query was applied (it shows as a filter), not ignored.
        await expect(page.get_by_text('"awaiting_approval"').first).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "web-ui-awaiting-list.png", full_page=True)


def _line(output: str, prefix: str) -> str:
    """What follows ``prefix`` on the first line of ``output`` that starts with it."""
    for line in output.splitlines():
        if line.strip().startswith(prefix):
            return line.strip().removeprefix(prefix).strip()
    raise AssertionError(f"no line starting {prefix!r} in:\n{output}")


async def _ended_runs(agents: LocalAgents, model: ScriptedModelServer, user: str) -> dict[str, str]:
    """One run of ``user`` ending completed, escalated, budget_exhausted: status -> run id.

    One after the other, as each consumes its own scripted replies."""
    ids: dict[str, str] = {}

    async def ended(agent: str | AgentSpec, goal: str) -> str:
        wid = (await agents.start_run(agent, goal, user=user)).workflow_id
        await report_within(agents, wid)
        model.reset()  # no reply left over for the next run
        return wid

    model.enqueue(plan_reply(tool_task("a", "record_effect", name="done")), purpose="plan")
    model.enqueue(Reply.text("done"), purpose="summarize")
    ids["completed"] = await ended("test-agent", "finish")

    risky = tool_task("r", "record_effect", name="risky")
    risky["success_criteria"] = ["nothing irreversible happened"]
    model.enqueue(plan_reply(risky), purpose="plan")
    model.enqueue(Reply.json({"judgement": "critical", "reason": "it broke"}), purpose="evaluate")
    model.enqueue(Reply.text("stopped"), purpose="summarize")
    ids["escalated"] = await ended("test-agent", "escalate")

    spec = agents.catalog.plugin("test-agent").build_spec()
    tight = spec.model_copy(
        update={
            "name": "test-agent-tight",
            "budget": Budget(max_llm_calls=1),
            "approvals": ApprovalPolicy(ask_budget_extension=False),
        }
    )
    model.enqueue(plan_reply(tool_task("b", "record_effect", name="kept")), purpose="plan")
    ids["budget_exhausted"] = await ended(tight, "overspend")
    return ids


async def test_printed_links_open_the_story_and_tell_ended_runs_apart(
    cli: Cli,
    agents: LocalAgents,
    model: ScriptedModelServer,
    worker: None,
    dev_server: DevServer,
    chromium: Path,
) -> None:
    user = f"ui-{uuid.uuid4().hex[:8]}"
    ids: dict[str, str] = {}
    for status, wid in (await _ended_runs(agents, model, user)).items():
        assert (await report_within(agents, wid)).status.value == status
        ids[status] = wid
    model.enqueue(plan_reply(tool_task("go", "launch_rocket", name="apollo")), purpose="plan")
    waiting = (await agents.start_run("test-agent", "launch", user=user)).workflow_id
    request = await pending_request(agents, waiting)
    ARTIFACTS.mkdir(exist_ok=True)

    code, said, _ = await cli("status", waiting)
    assert code == 7, said  # still running, awaiting approval
    story = _line(said, "Web UI:")
    assert story.endswith("/user-metadata"), story

    async with browser_page(chromium) as page:
        # The printed link opens on the story: no tab to find, no click.
        await page.goto(story)
        await wait_for_text(
            page,
            "Current Details",
            f"Waiting for approval {request.id}",
            request.what,
            f"agentctl approve {waiting} {request.id} --reason",
        )
        await page.screenshot(path=ARTIFACTS / "web-ui-story-link.png", full_page=True)

        await agents.cancel(waiting)
        assert (await report_within(agents, waiting)).status is RunStatus.CANCELLED
        ids["cancelled"] = waiting
        # Visibility catches up with each run's last AgentStatus in its own time.
        links: dict[str, str] = {}
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            while set(links) != set(ids):
                code, said, _ = await cli("list", "--user", user)
                assert code == 0, said
                links = {s: _line(said, f"{s}:") for s in ids if f"  {s}: http" in said}
                await asyncio.sleep(0.25)

        for status, wid in ids.items():
            await page.goto(links[status])
            await expect(page.get_by_role("link", name=wid)).to_be_visible(timeout=TIMEOUT_MS)
            await expect(page.get_by_text(f'"{status}"').first).to_be_visible()
            for other in set(ids.values()) - {wid}:
                await expect(page.get_by_role("link", name=other)).to_have_count(0)
            await page.screenshot(path=ARTIFACTS / f"web-ui-list-{status}.png", full_page=True)

        # One list with them all: the table's column settings add AgentStatus (once per
        # browser, kept in its storage), and each row says how its run ended.
        await page.goto(_line(said, "In the Web UI:"))
        for wid in ids.values():
            await expect(page.get_by_role("link", name=wid)).to_be_visible(timeout=TIMEOUT_MS)
        await page.get_by_test_id("workflows-summary-table-configuration-button").click()
        await page.get_by_test_id(f"orderable-list-item-{contract.AGENT_STATUS}-add-button").click()
        for _ in range(5):  # after Workflow ID, Run ID, Type, Start, End: next to Status
            await page.get_by_test_id(
                f"orderable-list-item-{contract.AGENT_STATUS}-move-up-button"
            ).click()
        await page.get_by_test_id("drawer-close-button").locator("visible=true").click()
        await expect(page.get_by_text("Configure Workflows Table")).not_to_be_in_viewport()
        await expect(page.get_by_role("columnheader", name=contract.AGENT_STATUS)).to_be_visible()
        for status, wid in ids.items():
            row = page.get_by_test_id("workflows-summary-configurable-table-row").filter(
                has=page.get_by_role("link", name=wid)
            )
            await expect(row).to_contain_text(status)
        await page.screenshot(path=ARTIFACTS / "web-ui-list-statuses.png", full_page=True)
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(ARTIFACTS / "web-ui-list-statuses.png", DOCS_LIST_SCREENSHOT)
