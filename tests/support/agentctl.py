"""``agentctl`` as a user types it: a real subprocess against a test's server and queue."""

import asyncio
import json
import os
import sys
from typing import Any

from durable_agents._devtools.dev_server import DevServer
from tests.support.processes import REPO


class Cli:
    """Runs ``agentctl`` (``python -m durable_agents._cli.main``) with this test's server
    and queue."""

    def __init__(self, server: DevServer, task_queue: str, plugins: str) -> None:
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": server.namespace,
            "AGENTS_TASK_QUEUE": task_queue,
            "AGENT_PLUGINS": plugins,
            "TEMPORAL_UI_URL": server.ui_url,
            "COLUMNS": "200",
        }

    async def __call__(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        proc = await self.stream(*args)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def stream(self, *args: str) -> asyncio.subprocess.Process:
        """Start a command whose output the test reads while it runs."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "durable_agents._cli.main",
            *args,
            cwd=REPO,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    @staticmethod
    async def read_until(
        proc: asyncio.subprocess.Process, text: str, timeout: float = 60, stderr: bool = False
    ) -> list[str]:
        """Lines of stdout (or stderr) up to and including the first containing ``text``."""
        stream = proc.stderr if stderr else proc.stdout
        assert stream is not None
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while not lines or text not in lines[-1]:
                line = await stream.readline()
                assert line, f"output ended before {text!r}: {lines}"
                lines.append(line.decode())
        return lines

    async def json(self, *args: str, code: int = 0) -> Any:
        rc, out, err = await self(*args, "--json")
        assert rc == code, f"exit {rc}\n{out}\n{err}"
        return json.loads(out)
