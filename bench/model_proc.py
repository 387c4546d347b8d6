"""The scripted model in a process of its own, so its CPU never counts as the worker's.

``python -m bench.model_proc`` serves the benchmark agent (`bench.agent`) and prints
``READY <base_url>``; then it obeys one command per stdin line, answering one stdout line:
``delay <s>`` (model latency), ``log`` (the requests so far as JSON) and ``clear``.
Request times are ``time.monotonic()``, which every process on the machine shares.
"""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.agent import install, iteration_of, tag_of
from durable_agents.testing.scripted_model import ScriptedModelServer

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Request:
    """One model request as the benchmark needs it."""

    purpose: str
    tag: str
    iteration: int
    received_at: float
    answered_at: float | None


def _serve() -> int:
    server = ScriptedModelServer()
    install(server)
    with server:
        print(f"READY {server.base_url}", flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "delay":
                server.default_delay_s = float(arg)
                print("ok", flush=True)
            elif command == "log":
                rows = [
                    [r.purpose, tag_of(r), iteration_of(r), r.received_at, r.answered_at]
                    for r in server.requests
                ]
                print(json.dumps(rows), flush=True)
            elif command == "clear":
                server.reset()  # forgets responders too
                install(server)
                print("ok", flush=True)
            else:
                print(f"error unknown command {command!r}", flush=True)
    return 0


class ModelProcess:
    """Starts and steers ``python -m bench.model_proc``."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> "ModelProcess":
        """Spawn the server and wait for its READY line."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.model_proc"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self._readline()
        if not first.startswith("READY "):
            raise RuntimeError(f"model server did not start: {first!r}")
        self.base_url = first.split(" ", 1)[1]
        return self

    def _readline(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("model server exited")
        return line.strip()

    def _ask(self, command: str) -> str:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        answer = self._readline()
        if answer.startswith("error"):
            raise RuntimeError(answer)
        return answer

    def set_delay(self, seconds: float) -> None:
        """Latency added to every reply from now on."""
        self._ask(f"delay {seconds}")

    def clear(self) -> None:
        """Forget the requests so far."""
        self._ask("clear")

    def requests(self) -> list[Request]:
        """Every request since the last ``clear``, in arrival order."""
        return [Request(*row) for row in json.loads(self._ask("log"))]

    def stop(self) -> None:
        """Close its stdin (it exits) and wait; kill it if it does not."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    sys.exit(_serve())
