"""``agentctl watch`` in a pseudo-terminal, as a person runs it: steps and the model's text
live, Ctrl-C (the byte a keyboard sends) detaches, and running it again goes on where it
stopped, printing no step twice and the answer once."""

import asyncio
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from durable_agents._domain.run import RunStatus
from durable_agents.testing.scripted_model import Reply, ScriptedModelServer
from tests.support.agentctl import Cli
from tests.support.agents import LocalAgents
from tests.support.plans import plan_reply, tool_task
from tests.support.processes import REPO

ANSWER = "Recorded a, then b, and nothing twice. " * 4
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


class Terminal:
    """``agentctl`` on the child side of a pty (its controlling terminal), 400 columns."""

    def __init__(self, cli: Cli, *args: str) -> None:
        master, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        env = {**cli.env, "TERM": "xterm-256color"}
        env.pop("COLUMNS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "durable_agents._cli.main", *args],
            cwd=REPO,
            env=env,
            stdin=child,
            stdout=child,
            stderr=child,
            preexec_fn=_take_terminal,
        )
        os.close(child)
        self._master = master
        self.output = ""

    async def read_until(self, text: str, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.screen:
                chunk = await asyncio.to_thread(_read, self._master)
                assert chunk, f"the terminal closed before {text!r}:\n{self.screen}"
                self.output += chunk.decode(errors="replace")

    async def finish(self, timeout: float = 60) -> int:
        async with asyncio.timeout(timeout):
            while chunk := await asyncio.to_thread(_read, self._master):
                self.output += chunk.decode(errors="replace")
            code = await asyncio.to_thread(self.proc.wait)
        os.close(self._master)
        return code

    def press_ctrl_c(self) -> None:
        os.write(self._master, b"\x03")

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.output)


def _take_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child side closed
        return b""


async def test_watch_in_a_terminal_detaches_on_ctrl_c_and_resumes(
    cli: Cli, agents: LocalAgents, model: ScriptedModelServer, worker: None
) -> None:
    model.enqueue(
        plan_reply(
            tool_task("t1", "record_effect", name="a"),
            tool_task("t2", "record_effect", name="b", seconds=2, depends_on=["t1"]),
        ),
        purpose="plan",
    )
    model.enqueue(Reply.text(ANSWER, chunk_chars=4, chunk_delay_s=0.05), purpose="summarize")
    handle = await agents.start_run("test-agent", "record a, then b")
    first = Terminal(cli, "watch", handle.workflow_id)
    await first.read_until("▶ t2:record_effect")  # t2 takes two seconds: detach meanwhile
    first.press_ctrl_c()
    assert await first.finish() == 7, first.screen  # 7: the run goes on
    assert "goes on from there" in first.screen
    second = Terminal(cli, "watch", handle.workflow_id)
    assert await second.finish() == 0, second.screen
    report = await agents.result(handle.workflow_id)
    assert report.status is RunStatus.COMPLETED
    both = first.screen + second.screen
    for step in ("plan (iteration 1)", "▶ t1:record_effect", "✓ t1:record_effect", "▶ t2"):
        assert both.count(step) == 1, (step, both)
    assert "✓ t2:record_effect" in second.screen and "completed" in second.screen
    # The answer is printed once, whole, after its header (the live area is transient).
    assert both.count("── answer ──") == 1
    printed = second.screen.split("── answer ──", 1)[1].lstrip("\n")
    assert printed.startswith(ANSWER.rstrip()), printed[:400]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["watch", "run-nobody"], "no run 'run-nobody'"),
        (["watch", "run-nobody", "--json"], "no run 'run-nobody'"),
        (["watch", "run-x", "--from-offset", "-1"], "whole number >= 0, got '-1'"),
        (["watch", "run-x", "--from-offset", "ten"], "whole number >= 0, got 'ten'"),
        (["watch", "run-x", "--from-offset", "3:llm:x:9"], "OFFSET:CALL:ATTEMPT:CHARS"),
    ],
)
async def test_watch_refuses_with_one_line(cli: Cli, args: list[str], reason: str) -> None:
    code, out, err = await cli(*args)
    assert code == 1 and reason in err and "Traceback" not in err + out, err
