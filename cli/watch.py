"""``agentctl watch``: a run's steps and its models' text, live, from its event stream.

Each model call's text is shown as it streams, in a live area at the bottom, and printed
once, for good, when the call has answered: a retried attempt's partial text is replaced
in the live area, never printed (`Transcript`). Ctrl-C detaches; the position is saved
(``$XDG_STATE_HOME/durable-agents/watch/<run>.json``), so ``agentctl watch RUN`` again
goes on where it stopped: steps already printed are not printed again, and a call that
was streaming is read again from its start, so its text is still printed whole, once.
"""

import json
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from durable_agents._cli.follow import answer_lines
from durable_agents._client.api import AgentsClient
from durable_agents._domain.events import CallText, EventKind, RunEvent, Transcript
from durable_agents._domain.money import format_usd, micros_to_usd
from durable_agents._domain.spec import Purpose

# Calls whose text is JSON for the run, not prose for people: shown while they stream,
# then summed up by the step they produce (the plan, the judgement).
MACHINE_READ = frozenset({Purpose.PLAN.value, Purpose.EVALUATE.value})


class WatchPosition(BaseModel):
    """Where a watch of one run stopped."""

    printed_upto: int = 0  # events before this offset were printed
    replay_from: int = 0  # the first event of a call still streaming then


def state_dir() -> Path:
    """Where watches keep their positions."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "durable-agents" / "watch"


def load_position(workflow_id: str) -> WatchPosition:
    """The saved position of ``workflow_id``'s watch (the start if none, or unreadable)."""
    path = state_dir() / f"{workflow_id}.json"
    try:
        return WatchPosition.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return WatchPosition()


def save_position(workflow_id: str, position: WatchPosition) -> None:
    """Remember where the watch of ``workflow_id`` is."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{workflow_id}.json").write_text(position.model_dump_json())


def step_line(event: RunEvent, workflow_id: str) -> str | None:
    """The line a step event prints (None: not a step)."""
    cost = f" · {format_usd(micros_to_usd(event.cost_micros))}" if event.cost_micros else ""
    why = f" ({event.detail})" if event.detail else ""
    match event.kind:
        case EventKind.PLAN_MADE:
            return f"[bold]plan[/] (iteration {event.iteration}): {event.label or 'nothing more'}"
        case EventKind.REPLAN:
            return f"[yellow]replan[/]: {event.detail}"
        case EventKind.TASK_STARTED:
            return f"▶ {event.label}"
        case EventKind.TASK_FINISHED:
            mark = "✓" if event.outcome == "ok" else "✗"
            return f"{mark} {event.label} → {event.outcome}{why}{cost}"
        case EventKind.APPROVAL_ASKED:
            asked = f"[bold yellow]Approval needed[/] {event.approval_id}: {event.label}{why}"
            return "\n".join([asked, *answer_lines(workflow_id, event.approval_id)])
        case EventKind.APPROVAL_DECIDED:
            return f"approval {event.approval_id}: {event.status}{why}"
        case EventKind.BUDGET_ALERT:
            return f"[yellow]budget alert[/]: {event.detail}"
        case EventKind.CONTINUED_AS_NEW:
            return f"[dim]continued as new after iteration {event.iteration}[/]"
        case EventKind.RUN_FINISHED:
            return f"[bold]run {event.status}[/]{why}{cost}"
    return None


class WatchView:
    """Applies events to the screen: step lines printed, model text live then printed."""

    def __init__(self, console: Console, workflow_id: str, position: WatchPosition) -> None:
        self._console = console
        self._workflow_id = workflow_id
        self._position = position
        self._transcript = Transcript()
        self._started: dict[str, int] = {}  # offset of each unfinished call's first event
        self.live = Live(console=console, transient=True, auto_refresh=False)

    def take(self, event: RunEvent) -> None:
        """Show ``event`` (or, for one shown before a detach, only remember it)."""
        call = self._transcript.apply(event)
        if event.call_id and event.call_id not in self._started:
            self._started[event.call_id] = event.offset
        if call is not None and call.finished:
            self._started.pop(event.call_id, None)
        self._redraw()  # first: each print below also redraws the live area after it
        fresh = event.offset >= self._position.printed_upto
        if fresh and call is not None and call.finished:
            self._print_call(call)
        elif fresh and (line := step_line(event, self._workflow_id)) is not None:
            self._console.print(line)
        self._position = WatchPosition(
            printed_upto=max(self._position.printed_upto, event.offset + 1),
            replay_from=min(self._started.values(), default=event.offset + 1),
        )

    @property
    def position(self) -> WatchPosition:
        """Where to resume after this event."""
        return self._position

    def _print_call(self, call: CallText) -> None:
        if call.failed:
            self._console.print(f"[red]model call {call.label} failed[/]")
        elif call.text and call.purpose not in MACHINE_READ:
            header = Text.from_markup(f"[dim]── {call.label} ──[/]")
            rest = Text("… (longer than what streams: the whole text is in the result)")
            wrong = Text.from_markup(
                "[red]the text shown live was not this answer (forged or garbled on the "
                "way); above is the answer the run recorded[/]"
            )
            parts = [header, Text(call.text), *([rest] if call.capped else [])]
            parts += [wrong] if call.verified is False else []
            self._console.print(Group(*parts))  # one print: one block

    def _redraw(self) -> None:
        streaming = [
            Text(f"{self._transcript.calls[c].label} …\n{self._transcript.text_of(c)}")
            for c in self._started
            if not self._transcript.calls[c].finished
        ]
        self.live.update(Group(*streaming), refresh=True)


def json_line(event: RunEvent) -> str:
    """One event as a JSON line (with its offset, even the first, and the cursor to
    resume after it with ``--from-offset``)."""
    data = json.loads(event.model_dump_json())
    return json.dumps({"offset": event.offset, "cursor": event.cursor(), **data})


async def show_events(client: AgentsClient, workflow_id: str, view: WatchView) -> bool:
    """Show the run's events until it ends (True), saving the position as it goes."""
    async for event in client.events(workflow_id, view.position.replay_from):
        view.take(event)
        save_position(workflow_id, view.position)
    return True


async def print_json_events(client: AgentsClient, workflow_id: str, start: int | str) -> bool:
    """Print the run's events as JSON lines until it ends (True)."""
    async for event in client.events(workflow_id, start):
        print(json_line(event), flush=True)  # noqa: T201 - JSON lines
    return True
