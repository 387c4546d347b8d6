"""Build Go programs from the Go module proxy into the user cache, once, with progress.

The Temporal CLI, server, SQL tool and Web UI server are published as Go modules; on
machines that reach only package registries, ``go install module/cmd@version`` is how we
get them. Builds go into ``${XDG_CACHE_HOME:-~/.cache}/durable-agents/<name>-<version>/``
(outside the repository, so fresh clones reuse them), under an exclusive lock so two
processes never build the same thing at once; a process that waits says how far the other
build has got. A binary only enters the cache after it has been seen to run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Say = Callable[[str], None]

BUILD_TIMEOUT_S = 30 * 60
_PROGRESS_EVERY_S = 15.0
# A process waiting for another's build checks the lock this often and reports this often.
_LOCK_POLL_S = 0.5
_WAIT_PROGRESS_EVERY_S = 10.0


class GoBuildError(Exception):
    """A ``go install`` did not produce a working binary; the message says why."""


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/durable-agents``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "durable-agents"


def build_progress(parent: Path, prefix: str) -> str:
    """How far the build running in ``parent/<prefix>.build-*`` has got (from its log)."""
    logs = sorted(
        parent.glob(f"{prefix}.build-*/go-install.log"),
        key=lambda p: p.stat().st_mtime if p.exists() else 0,
    )
    if not logs:
        return ""
    try:
        lines = logs[-1].read_text(errors="replace").splitlines()
    except OSError:
        return ""
    packages = [line for line in lines if line and not line.startswith(("go: ", "#"))]
    if not packages:
        return ", downloading modules"
    return f", {len(packages)} packages compiled (last: {packages[-1]})"


@contextmanager
def exclusive_lock(lock_file: Path, what: str, say: Say) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file``; while another process holds it, say every
    few seconds how long we have waited and how far that build has got."""
    prefix = lock_file.name.removeprefix(".").removesuffix(".lock")
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process that is building {what} ({lock_file})")
            started = time.monotonic()
            last_said = started
            while True:
                time.sleep(_LOCK_POLL_S)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    now = time.monotonic()
                    if now - last_said >= _WAIT_PROGRESS_EVERY_S:
                        last_said = now
                        say(
                            f"  still waiting for the other build: {now - started:.0f}s "
                            f"elapsed{build_progress(lock_file.parent, prefix)}"
                        )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def go_install(
    packages: list[str], gobin: Path, what: str, say: Say, ldflags: str | None = None
) -> float:
    """``go install -v`` each ``module/cmd@version`` into ``gobin``, saying how it goes every
    15 s; return the seconds it took. Raise `GoBuildError` with the log's tail on failure."""
    go = shutil.which("go")
    if go is None:
        raise GoBuildError("`go` is not on PATH")
    # GOFLAGS=-mod=mod so a user's -mod=vendor/readonly cannot break a module@version install.
    env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-mod=mod"}
    log_path = gobin / "go-install.log"
    started = time.monotonic()
    for package in packages:
        # -v lists each package as it is compiled: the progress a waiting process reports.
        command = [go, "install", "-v", *([f"-ldflags={ldflags}"] if ldflags else []), package]
        try:
            with log_path.open("wb") as log:
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                while True:
                    try:
                        code = proc.wait(timeout=_PROGRESS_EVERY_S)
                        break
                    except subprocess.TimeoutExpired:
                        elapsed = time.monotonic() - started
                        if elapsed > BUILD_TIMEOUT_S:
                            proc.kill()
                            proc.wait()
                            raise GoBuildError(f"gave up after {elapsed:.0f}s") from None
                        say(
                            f"  still building {what} ... {elapsed:.0f}s elapsed"
                            f"{build_progress(gobin.parent, gobin.name.split('.build-')[0])}"
                        )
            output = log_path.read_text(errors="replace").strip().splitlines()
        finally:
            log_path.unlink(missing_ok=True)
        if code != 0:
            tail = "\n      ".join(output[-15:])
            raise GoBuildError(f"`{' '.join(command)}` exited with {code}:\n      {tail}")
    return time.monotonic() - started


def module_dir(module_at_version: str) -> Path:
    """The source directory of ``module@vX.Y.Z`` in the Go module cache (downloaded if
    missing): where schemas and config files shipped with a module are read from."""
    go = shutil.which("go")
    if go is None:
        raise GoBuildError("`go` is not on PATH")
    done = subprocess.run(
        [go, "mod", "download", "-json", module_at_version],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if done.returncode != 0:
        raise GoBuildError(f"go mod download {module_at_version}: {done.stdout}{done.stderr}")
    return Path(json.loads(done.stdout)["Dir"])


def build_cached(
    target: Path,
    what: str,
    ready: Callable[[], bool],
    build: Callable[[Path], None],
    say: Say,
) -> None:
    """Make ``target`` (a cache directory) ready, building it at most once across processes.

    ``ready()`` tells whether the cache holds a working build; ``build(tmp)`` fills a
    temporary directory beside ``target``, which then replaces ``target`` whole.
    """
    if ready():
        return
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(parent / f".{target.name}.lock", what, say):
        if ready():  # another process finished the build while we waited
            return
        # We hold the lock, so any leftover build dir is from a killed build: remove it.
        for stale in parent.glob(f"{target.name}.build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.build-", dir=parent))
        try:
            build(tmp)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)  # atomic: others see no build or a complete one
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not ready():
            raise GoBuildError(f"{target} was built but does not work")
