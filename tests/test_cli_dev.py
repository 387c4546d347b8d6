"""``agentctl dev`` and ``make demo`` as a person starts them: ports they choose, ports that
are taken, a server to reuse, and a demo that can be run again and again."""

import asyncio
import os
import pty
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_agents._devtools.dev_server import DevServer, free_port
from tests.support.processes import REPO

pytestmark = pytest.mark.e2e


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "OPENAI_"))}
    return {**env, "COLUMNS": "200", **extra}


async def _start(
    *args: str, cwd: Path, env: dict[str, str], stdin: int | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _read_until(stream: asyncio.StreamReader, text: str, timeout: float = 120) -> str:
    """Everything read up to and including ``text`` (chunks: a prompt has no newline)."""
    seen = ""
    async with asyncio.timeout(timeout):
        while text not in seen:
            chunk = await stream.read(4096)
            assert chunk, f"output ended before {text!r}:\n{seen}"
            seen += chunk.decode()
    return seen


async def _stop(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # never leave a server behind
            proc.kill()
            await proc.wait()
    return out.decode(), err.decode()


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port held by something that listens but does not speak Temporal."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_dev_on_chosen_ports_starts_server_and_worker_and_ctrl_c_stops_both(
    tmp_path: Path,
) -> None:
    port, ui_port = free_port(), free_port()
    proc = await _start(
        "-m", "durable_agents._cli.main", "dev", "--port", str(port), "--ui-port", str(ui_port),
        cwd=tmp_path, env=_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        said = await _read_until(proc.stderr, "Ctrl-C to stop")
    finally:
        _, rest = await _stop(proc)
    assert f"Temporal: 127.0.0.1:{port} · Web UI: http://127.0.0.1:{ui_port}" in said
    assert "offline model" in said and (tmp_path / ".data" / "temporal.db").exists()
    assert proc.returncode == 0 and "stopped" in rest, rest


async def test_dev_says_which_option_to_use_when_a_port_is_busy(
    tmp_path: Path, squatter: int
) -> None:
    # The Web UI's port is taken: one line naming --ui-port, exit 2, nothing started.
    proc = await _start(
        "-m", "durable_agents._cli.main", "dev",
        "--port", str(free_port()), "--ui-port", str(squatter),
        cwd=tmp_path, env=_env(),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, err.decode()
    assert lines[-1].startswith(f"error: Web UI port {squatter} is busy: choose another with")
    assert "--ui-port" in lines[-1] and "Traceback" not in err.decode()
    # Temporal's port is held by something that is not Temporal: not "reused".
    proc = await _start(
        "-m", "durable_agents._cli.main", "dev", "--port", str(squatter), cwd=tmp_path, env=_env()
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 2, text
    assert "reusing" not in text and "Traceback" not in text
    assert (
        text.strip()
        .splitlines()[-1]
        .startswith(
            f"error: port {squatter} is busy with something that does not answer as Temporal: "
            "choose another with --port"
        )
    )
    # The same through TEMPORAL_ADDRESS: said so, with what to do.
    proc = await _start(
        "-m", "durable_agents._cli.main", "dev", cwd=tmp_path,
        env=_env(TEMPORAL_ADDRESS=f"127.0.0.1:{squatter}"),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and "does not answer as Temporal" in err.decode()
    assert "TEMPORAL_ADDRESS" in err.decode()


async def test_dev_reuses_the_temporal_server_at_temporal_address(
    tmp_path: Path, dev_server: DevServer
) -> None:
    proc = await _start(
        "-m",
        "durable_agents._cli.main",
        "dev",
        cwd=tmp_path,
        env=_env(TEMPORAL_ADDRESS=dev_server.address),
    )
    assert proc.stderr is not None
    try:
        said = await _read_until(proc.stderr, "Ctrl-C to stop")
    finally:
        await _stop(proc)
    assert f"reusing the Temporal server already on {dev_server.address}" in said
    assert f"Temporal: {dev_server.address}" in said
    assert dev_server.running  # left running: it is not ours


async def test_dev_refuses_a_temporal_server_it_did_not_start(
    tmp_path: Path, dev_server: DevServer
) -> None:
    """A port taken by a Temporal server `agentctl dev` did not start (a cluster, another
    checkout's) is not silently reused: one line says how to use it or avoid it."""
    port = dev_server.address.rsplit(":", 1)[1]
    proc = await _start(
        "-m", "durable_agents._cli.main", "dev", "--port", port, cwd=tmp_path, env=_env()
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    last = err.decode().strip().splitlines()[-1]
    assert proc.returncode == 2, err.decode()
    assert last.startswith(f"error: port {port} is busy with a Temporal server that agentctl")
    assert f"TEMPORAL_ADDRESS={dev_server.address}" in last and "--port" in last
    assert "reusing" not in err.decode()


async def test_demo_can_be_run_again_and_asks_each_time(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    for attempt in range(2):
        controller, terminal = pty.openpty()
        try:
            proc = await _start(
                "-m", "examples.demo",
                "--port", str(port), "--ui-port", str(ui_port),
                cwd=tmp_path, env=_env(), stdin=terminal,
            )  # fmt: skip
            assert proc.stdout is not None
            said = await _read_until(proc.stdout, "[y/N]", timeout=150)
            assert "Approval needed" in said and "drop_index" in said, (attempt, said)
            os.write(controller, b"maybe\n")  # neither: asked again
            said = await _read_until(proc.stdout, "[y/N]")
            assert "please answer y or n (got 'maybe')" in said
            os.write(controller, b"y\n")
            out, err = await asyncio.wait_for(proc.communicate(), 150)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            os.close(controller)
            os.close(terminal)
        assert proc.returncode == 0, (attempt, out.decode()[-3000:], err.decode()[-3000:])
        assert "completed" in out.decode() and "→ approved" in out.decode()


async def test_waiting_for_another_cli_build_shows_time_and_progress(tmp_path: Path) -> None:
    """A second process that needs the Temporal CLI while another builds it says how long
    it has waited and how far the build has got, then uses the build."""
    import fcntl

    from durable_agents._devtools.temporal_cli import TEMPORAL_CLI_VERSION

    cache = tmp_path / "cache" / "durable-agents"
    build_dir = cache / f"temporal-{TEMPORAL_CLI_VERSION}.build-x"
    build_dir.mkdir(parents=True)
    (build_dir / "go-install.log").write_text("github.com/a/b\ngithub.com/temporalio/cli/x\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = bin_dir / "go"  # never run: the lock is held until the "other build" is done
    go.write_text("#!/bin/sh\nexit 1\n")
    go.chmod(0o755)
    env = {**_env(XDG_CACHE_HOME=str(tmp_path / "cache")), "PATH": f"{bin_dir}:/bin:/usr/bin"}
    with (cache / f".temporal-{TEMPORAL_CLI_VERSION}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other process's build
        proc = await _start("-m", "durable_agents._devtools.temporal_cli", cwd=REPO, env=env)
        assert proc.stderr is not None
        said = await _read_until(proc.stderr, "packages compiled", timeout=60)
        assert "waiting for another process that is building the Temporal CLI" in said
        assert "s elapsed, 2 packages compiled (last: github.com/temporalio/cli/x)" in said
        binary = cache / f"temporal-{TEMPORAL_CLI_VERSION}" / "temporal"
        binary.parent.mkdir()
        binary.write_text(f"#!/bin/sh\necho 'temporal version {TEMPORAL_CLI_VERSION}'\n")
        binary.chmod(0o755)
        fcntl.flock(lock, fcntl.LOCK_UN)  # the build is done
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and out.decode().strip() == str(binary)
