"""The file-editor agent: reads and edits text files confined to one workspace directory.

Every path is checked against the workspace (no absolute paths, no ``..``, no symbolic
link leading out) and opened without following links; every write and delete keeps the
replaced bytes outside the workspace, so ``undo_write(write_id)`` can restore them. A file
with more than one hard link is refused, and rewrites drop setuid, setgid and sticky bits.
``force_undo_write`` (approved by a person) also undoes over a later change, keeping it.
The workspace is ``$AGENT_DATA_DIR/file-editor/workspace`` or ``$FILE_EDITOR_WORKSPACE``.

``PLUGIN`` is what workers and the client load (see `activities.plugins`).
"""

from durable_agents import AgentPlugin
from examples.file_editor.checks import STATE_CHECKS
from examples.file_editor.offline import offline_policy
from examples.file_editor.spec import build_spec
from examples.file_editor.tools import TOOLS

PLUGIN = AgentPlugin(
    name="file-editor",
    build_spec=build_spec,
    tools=TOOLS,
    offline_policy=offline_policy,
    state_checks=STATE_CHECKS,
)

__all__ = ["PLUGIN"]
