"""Worker processes for tests that kill and restart them."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from durable_agents._devtools.dev_server import die_with_parent

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A worker (``python -m durable_agents._workers.main`` unless told otherwise) in its own
    process, with its log in a file."""

    def __init__(
        self, env: dict[str, str], log_file: Path, module: str = "durable_agents._workers.main"
    ) -> None:
        self._env = env
        self.log_file = log_file
        self.module = module
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id (Temporal's default worker identity is ``pid@host``)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float = 60.0) -> "WorkerProcess":
        """Start the process and wait until it logs that it is ready."""
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_file.read_text()[-3000:]}")
            if "worker ready" in self.log_file.read_text()[offset:]:
                return self
            await asyncio.sleep(0.1)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log_file.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a machine dying."""
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait for a graceful exit."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                return self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._proc.returncode if self._proc else None
