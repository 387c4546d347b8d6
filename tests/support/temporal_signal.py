"""Signals sent with the official ``temporal`` CLI: plaintext JSON, no codec, as anyone who
reaches the frontend could send them."""

import asyncio
import json
import subprocess
from pathlib import Path


async def signal_with_temporal_cli(
    cli: Path, address: str, workflow_id: str, name: str, value: object, namespace: str = "default"
) -> None:
    """``temporal workflow signal`` with ``value`` as its JSON input; fails if the CLI does."""
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(cli),
            "workflow",
            "signal",
            "--address",
            address,
            "--namespace",
            namespace,
            "--workflow-id",
            workflow_id,
            "--name",
            name,
            "--input",
            json.dumps(value),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
