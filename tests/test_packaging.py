"""The wheel as users get it: one top-level package, and the guide's agent runs from it.

The wheel is built from this checkout and installed, with its dependencies, into a fresh
virtualenv outside the checkout; the guide's agent and its test are copied into a bare
project directory and pass there, on a real dev server, with only ``durable_agents``
and ``durable_agents.testing`` to import.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT, cwd=out)
    (built,) = out.glob("durable_agents-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert names == {"durable_agents", wheel.name.split("-py3")[0] + ".dist-info"}
    files = zipfile.ZipFile(wheel).namelist()
    assert "durable_agents/_workflows/agent_run.py" in files
    assert "durable_agents/testing/environment.py" in files
    assert not [f for f in files if "/examples/" in f or "__pycache__" in f or "/tests/" in f]


def test_the_guides_agent_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", wheel, "pytest", "pytest-asyncio", cwd=tmp_path)
    # What the wheel added to site-packages: exactly one package and its metadata.
    site = Path(
        run(
            py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).strip()
    )
    record = next(site.glob("durable_agents-*.dist-info")) / "RECORD"
    tops = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    assert {t for t in tops if not t.startswith("..")} == {"durable_agents", record.parent.name}
    # A user's project: the guide's agent and its test, nothing else of the checkout.
    project = tmp_path / "project"
    shutil.copytree(ROOT / "examples" / "refunds", project / "examples" / "refunds")
    (project / "examples" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AGENT_PLUGINS")}
    out = run(
        py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/refunds", cwd=project, env=env
    )
    assert "2 passed" in out
    where = run(
        py, "-c", "import durable_agents; print(durable_agents.__file__)", cwd=project, env=env
    )
    assert where.startswith(str(site)), where
    assert "agentctl" in run(venv / "bin" / "agentctl", "--help", cwd=project, env=env)
