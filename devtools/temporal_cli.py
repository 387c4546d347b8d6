"""Find a working Temporal CLI (``temporal``) binary, building it from Go modules if needed.

The dev server, the end-to-end tests and ``make demo`` need the real ``temporal server
start-dev``. The SDK's own download comes from temporal.download, which is unreachable on
machines that can only talk to package registries, so the main fallback is ``go install``
through the Go module proxy. The result is cached outside the repository (fresh CI clones
reuse it) and is only moved into the cache after it has been seen to run.

``python -m durable_agents._devtools.temporal_cli`` prints the binary's path on stdout;
progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORAL_CLI_VERSION = "1.5.1"
TEMPORAL_CLI_MODULE = "github.com/temporalio/cli/cmd/temporal"

# `go install` leaves the CLI's version at "0.0.0-DEV"; the release build stamps it like this.
_VERSION_LDFLAGS = f"-s -w -X github.com/temporalio/cli/temporalcli.Version={TEMPORAL_CLI_VERSION}"
_BUILD_TIMEOUT_S = 30 * 60
_PROGRESS_EVERY_S = 15.0
# A process waiting for another's build checks the lock this often and says how it goes
# this often.
_LOCK_POLL_S = 0.5
_WAIT_PROGRESS_EVERY_S = 10.0
# `<binary> --version` results, keyed by path and mtime so a replaced file is checked again.
_probe_cache: dict[tuple[str, int], str | None] = {}


class TemporalCliNotFoundError(RuntimeError):
    """No working ``temporal`` binary was found or built; the message lists what was tried."""

    def __init__(self, tried: list[str]) -> None:
        self.tried = tried
        steps = "\n".join(f"  - {item}" for item in tried)
        super().__init__(
            f"no working Temporal CLI (`temporal`) found. Tried:\n{steps}\n"
            "To fix, do one of:\n"
            "  - set TEMPORAL_CLI=/path/to/a/working/temporal (or unset it)\n"
            f"  - install Go >= 1.23 (https://go.dev/dl/) and rerun: it builds v"
            f"{TEMPORAL_CLI_VERSION} once into {cache_dir()}\n"
            "  - put `temporal` on PATH (https://docs.temporal.io/cli#install)"
        )


class _StepError(Exception):
    """One way of getting the binary did not work; the message says why."""


def cache_dir() -> Path:
    """Return ``${XDG_CACHE_HOME:-~/.cache}/durable-agents/temporal-<version>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "durable-agents" / f"temporal-{TEMPORAL_CLI_VERSION}"


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _probe(path: Path) -> str | None:
    """Return the ``--version`` line if ``path`` is a working Temporal CLI, else None."""
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return None
    if key not in _probe_cache:
        result: str | None = None
        try:
            done = subprocess.run(
                [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            line = (done.stdout.strip().splitlines() or [""])[0]
            if done.returncode == 0 and line.startswith("temporal version"):
                result = line
        _probe_cache[key] = result
    return _probe_cache[key]


def _cached_build() -> Path | None:
    path = cache_dir() / "temporal"
    version = _probe(path) if _is_executable(path) else None
    # Our builds carry the version (see _VERSION_LDFLAGS); anything else here is not ours.
    return path if version and TEMPORAL_CLI_VERSION in version else None


@contextmanager
def _exclusive_lock(lock_file: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive flock so two processes never build into the cache at once.

    While another process holds it, say every ``_WAIT_PROGRESS_EVERY_S`` how long we have
    waited and how far that build has got (from its ``go install -v`` log).
    """
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process that is building the Temporal CLI ({lock_file})")
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
                            f"elapsed{_build_progress(lock_file.parent)}"
                        )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_progress(parent: Path) -> str:
    """How far the build running in ``parent`` has got, from its log (or nothing)."""
    logs = sorted(
        parent.glob(f"temporal-{TEMPORAL_CLI_VERSION}.build-*/go-install.log"),
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


def _build(say: Callable[[str], None]) -> Path:
    go = shutil.which("go")
    if go is None:
        raise _StepError("`go` is not on PATH")
    parent = cache_dir().parent
    parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(parent / f".temporal-{TEMPORAL_CLI_VERSION}.lock", say):
        # Another process may have finished the build while we waited for the lock.
        cached = _cached_build()
        if cached is not None:
            return cached
        # We hold the lock, so any leftover build dir is from a killed build: remove it.
        for stale in parent.glob(f"temporal-{TEMPORAL_CLI_VERSION}.build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(
            prefix=f"temporal-{TEMPORAL_CLI_VERSION}.build-", dir=parent
        ) as tmp:
            return _go_install(go, Path(tmp), say)


def _go_install(go: str, gobin: Path, say: Callable[[str], None]) -> Path:
    # GOFLAGS=-mod=mod so a user's -mod=vendor/readonly cannot break a module@version install.
    # CGO_ENABLED is left alone: the CLI's SQLite is pure Go, Go turns cgo off by itself when
    # there is no C compiler, and keeping it lets a warm Go build cache be reused.
    env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-mod=mod"}
    # -v lists each package as it is compiled: the progress a waiting process reports.
    command = [go, "install", "-v", f"-ldflags={_VERSION_LDFLAGS}"]
    command.append(f"{TEMPORAL_CLI_MODULE}@v{TEMPORAL_CLI_VERSION}")
    log_path = gobin / "go-install.log"
    say(
        f"building Temporal CLI v{TEMPORAL_CLI_VERSION} from Go modules into {cache_dir()} "
        "(first time only; takes a few minutes)"
    )
    started = time.monotonic()
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            while True:
                try:
                    code = proc.wait(timeout=_PROGRESS_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > _BUILD_TIMEOUT_S:
                        proc.kill()
                        proc.wait()
                        raise _StepError(f"gave up after {elapsed:.0f}s") from None
                    say(
                        f"  still building Temporal CLI ... {elapsed:.0f}s elapsed"
                        f"{_build_progress(gobin.parent)}"
                    )
        output = log_path.read_text(errors="replace").strip().splitlines()
    finally:
        log_path.unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    if code != 0:
        tail = "\n      ".join(output[-15:])
        raise _StepError(f"`{' '.join(command)}` exited with {code}:\n      {tail}")
    built = gobin / "temporal"
    version = _probe(built) if _is_executable(built) else None
    if version is None or TEMPORAL_CLI_VERSION not in version:
        raise _StepError(f"the built {built} does not report v{TEMPORAL_CLI_VERSION}: {version}")
    target = cache_dir() / "temporal"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Path.replace is os.replace: atomic, so other processes see no binary or a complete one.
    built.replace(target)
    say(f"built Temporal CLI v{TEMPORAL_CLI_VERSION} in {elapsed:.0f}s: {target}")
    return target


def _sdk_download(say: Callable[[str], None]) -> Path:
    """Let the Temporal SDK download its default CLI, then pick the file it saved."""
    from temporalio.testing import WorkflowEnvironment

    dest = cache_dir().parent / "sdk-download"
    dest.mkdir(parents=True, exist_ok=True)

    async def download() -> None:
        # The SDK only downloads as part of starting a server, so start one and stop it.
        env = await WorkflowEnvironment.start_local(download_dest_dir=str(dest), ui=False)
        await env.shutdown()

    say(f"trying the Temporal SDK's CLI download into {dest}")
    # A fresh thread gets its own event loop, so this works even if a loop is running here.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(lambda: asyncio.run(download())).result(timeout=600)
        except Exception as err:  # any failure just means this step did not work
            raise _StepError(str(err).strip().splitlines()[0] if str(err) else repr(err)) from err
    candidates = [p for p in dest.iterdir() if not p.name.endswith(".downloading")]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        if _is_executable(path) and _probe(path):
            return path
    raise _StepError("the download finished but no working binary was found in it")


def find_temporal_cli(*, build: bool = True, progress: Callable[[str], None] | None = None) -> Path:
    """Return the path of a working ``temporal`` binary, building or downloading it if needed.

    Order: ``$TEMPORAL_CLI``; ``temporal`` on PATH; the cached build; ``go install`` into the
    cache; the SDK's own download. With ``build=False`` nothing is built or downloaded.
    ``progress`` receives human-readable progress lines (default: stderr).
    """
    say = progress or _to_stderr
    explicit = os.environ.get("TEMPORAL_CLI")
    if explicit:
        path = Path(explicit).expanduser()
        if not _is_executable(path):
            raise TemporalCliNotFoundError([f"$TEMPORAL_CLI={explicit}: not an executable file"])
        if _probe(path) is None:
            raise TemporalCliNotFoundError([f"$TEMPORAL_CLI={explicit}: `--version` failed"])
        return path

    tried: list[str] = []
    on_path = shutil.which("temporal")
    if on_path and _probe(Path(on_path)):
        return Path(on_path)
    tried.append(f"`temporal` on PATH: {'`--version` failed' if on_path else 'not found'}")

    cached = _cached_build()
    if cached is not None:
        return cached
    tried.append(f"cached build {cache_dir() / 'temporal'}: missing or not working")

    if not build:
        tried.append("building with Go / the SDK download: skipped (build=False)")
        raise TemporalCliNotFoundError(tried)
    steps: list[tuple[str, Callable[[Callable[[str], None]], Path]]] = [
        (f"go install {TEMPORAL_CLI_MODULE}@v{TEMPORAL_CLI_VERSION}", _build),
        ("the Temporal SDK's own download (WorkflowEnvironment.start_local)", _sdk_download),
    ]
    for label, step in steps:
        try:
            return step(say)
        except _StepError as err:
            tried.append(f"{label}: {err}")
    raise TemporalCliNotFoundError(tried)


def main() -> int:
    """Print the binary's path on stdout, or the error on stderr and return 1."""
    try:
        path = find_temporal_cli()
    except TemporalCliNotFoundError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
