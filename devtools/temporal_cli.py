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
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from durable_agents._devtools.go_build import GoBuildError, cache_root, exclusive_lock, go_install

TEMPORAL_CLI_VERSION = "1.5.1"
TEMPORAL_CLI_MODULE = "github.com/temporalio/cli/cmd/temporal"

# `go install` leaves the CLI's version at "0.0.0-DEV"; the release build stamps it like this.
_VERSION_LDFLAGS = f"-s -w -X github.com/temporalio/cli/temporalcli.Version={TEMPORAL_CLI_VERSION}"
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
    return cache_root() / f"temporal-{TEMPORAL_CLI_VERSION}"


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


def _build(say: Callable[[str], None]) -> Path:
    parent = cache_dir().parent
    parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(parent / f".temporal-{TEMPORAL_CLI_VERSION}.lock", "the Temporal CLI", say):
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
            return _go_install(Path(tmp), say)


def _go_install(gobin: Path, say: Callable[[str], None]) -> Path:
    # CGO_ENABLED is left alone: the CLI's SQLite is pure Go, Go turns cgo off by itself when
    # there is no C compiler, and keeping it lets a warm Go build cache be reused.
    say(
        f"building Temporal CLI v{TEMPORAL_CLI_VERSION} from Go modules into {cache_dir()} "
        "(first time only; takes a few minutes)"
    )
    package = f"{TEMPORAL_CLI_MODULE}@v{TEMPORAL_CLI_VERSION}"
    try:
        elapsed = go_install([package], gobin, "Temporal CLI", say, ldflags=_VERSION_LDFLAGS)
    except GoBuildError as err:
        raise _StepError(str(err)) from err
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
