"""The Temporal Web UI tells a run's story: checked in a real headless browser.

A run waiting for approval is opened in the dev server's Web UI (2.42.1). The History tab
(the default) shows each activity's summary in the timeline and in the event rows; the
User Metadata tab shows the run's static summary and details, the "Events with Metadata"
(activity and timer summaries), and the live "Current Details" Markdown with the pending
approval and the exact ``agentctl approve`` command. Markdown is rendered in iframes, so
the text is read from every frame. The list page's ``query`` parameter filters by search
attribute, as the README says.
"""

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import expect

from client.dev_server import DevServer
from tests.support.agents import LocalAgents
from tests.support.browser import TIMEOUT_MS, browser_page, find_chromium, wait_for_text
from tests.support.plans import plan_reply, tool_task
from tests.support.scripted_model import Reply, ScriptedModelServer
from tests.support.waiting import pending_request

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "web-ui.png"
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
        query = quote('AgentStatus="awaiting_approval"', safe="")
        await page.goto(
            f"{dev_server.ui_url}/namespaces/{dev_server.namespace}/workflows?query={query}"
        )
        await expect(page.get_by_role("link", name=wid)).to_be_visible(timeout=TIMEOUT_MS)
        # ...because the query was applied (it shows as a filter), not ignored.
        await expect(page.get_by_text('"awaiting_approval"').first).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "web-ui-awaiting-list.png", full_page=True)
