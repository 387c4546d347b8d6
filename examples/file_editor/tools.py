"""The file-editor's tools: list, read, write, undo and delete files inside one workspace.

Every path goes through `examples.file_editor.sandbox` (no absolute paths, no ``..``,
no link leading out) and is opened without following links. Blocking work runs in
``asyncio.to_thread``. The changing tools are idempotent per idempotency key and keep
the replaced bytes in `examples.file_editor.ledger`, so each write and delete can be
undone with ``undo_write(write_id)``, and a retried call never backs up its own output.
"""

import asyncio
import codecs
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from durable_agents import SideEffect, ToolContext, ToolFailedError, ToolInputError, ToolRegistry
from examples.file_editor import files
from examples.file_editor.args import DeleteArgs, ListArgs, ReadArgs, UndoArgs, WriteArgs
from examples.file_editor.ledger import Change, Ledger, backup_root, digest, write_id_for
from examples.file_editor.sandbox import resolve, workspace_root

TOOLS = ToolRegistry()
T = TypeVar("T")
# Backup, effect and record of one change must not interleave with another change of the
# same file in this worker (plans run tasks in parallel threads). Workers in other
# processes are not serialised: give each workspace one worker, or use a file lock.
_CHANGE_LOCK = threading.Lock()


async def _blocking(work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work)


def _undo_hint(write_id: str) -> str:
    return f'undo_write(write_id="{write_id}")'


def _place(ctx: ToolContext) -> tuple[Path, Ledger]:
    root = workspace_root(ctx.data_dir)
    return root, Ledger(backup_root(ctx.data_dir, root))


def _check_same_call(change: Change, op: str, rel: PurePosixPath, new_sha: str | None) -> None:
    """A retry must be the same change; a key reused for another one is a bug, not a retry."""
    if (change.op, change.path, change.new_sha256) != (op, rel.as_posix(), new_sha):
        raise ToolFailedError(
            f"idempotency key {change.key} already recorded {change.op} of '{change.path}' "
            f"({change.write_id}); refusing a different change under the same key"
        )


def _record(
    ctx: ToolContext, ledger: Ledger, root: Path, rel: PurePosixPath, op: str, new_sha: str | None
) -> Change:
    """The ledger row for this call: found (a retry) or created with a fresh backup."""
    change = ledger.by_key(ctx.idempotency_key)
    if change is not None:
        _check_same_call(change, op, rel, new_sha)
        return change
    before = files.snapshot(root, rel)
    if op == "delete" and not before.existed:
        raise ToolInputError(f"'{rel}' does not exist; there is nothing to delete")
    change = Change(
        key=ctx.idempotency_key,
        write_id=write_id_for(ctx.idempotency_key),
        op=op,
        path=rel.as_posix(),
        existed=before.existed,
        mode=before.mode,
        old_sha256=digest(before.data) if before.existed else None,
        new_sha256=new_sha,
    )
    ledger.begin(change, before.data if before.existed else None)
    return change


@TOOLS.tool(side_effect=SideEffect.READ, resource_arg="path")
async def list_files(args: ListArgs, ctx: ToolContext) -> dict[str, Any]:
    """List a workspace directory (recursive=true: and its sub-directories).

    Each entry has its path relative to the workspace root (ready for read_file), its type
    ("file", "dir", "symlink", "other") and, for files, its size in bytes. Symbolic links
    are shown, never followed.
    """

    def work() -> dict[str, Any]:
        root = workspace_root(ctx.data_dir)
        rel = resolve(root, args.path)
        entries, truncated = files.list_dir(
            root, rel, recursive=args.recursive, limit=args.max_entries
        )
        return {"path": rel.as_posix(), "entries": entries, "truncated": truncated}

    return await _blocking(work)


@TOOLS.tool(side_effect=SideEffect.READ, resource_arg="path")
async def read_file(args: ReadArgs, ctx: ToolContext) -> dict[str, Any]:
    """Read a UTF-8 text file of the workspace (at most max_bytes from its start).

    truncated=true means the file is longer than what was returned: do not write back a
    truncated content, it would cut the file.
    """

    def work() -> dict[str, Any]:
        root = workspace_root(ctx.data_dir)
        rel = resolve(root, args.path)
        data, size, _ = files.read(root, rel, args.max_bytes)
        truncated = size > len(data)
        try:
            # final=False when cut: a multi-byte character split by the cut is left out
            # instead of being an error; invalid bytes anywhere else still are.
            text = codecs.getincrementaldecoder("utf-8")().decode(data, final=not truncated)
        except UnicodeDecodeError:
            raise ToolInputError(
                f"'{rel}' is not UTF-8 text; this agent edits text files"
            ) from None
        return {"path": rel.as_posix(), "content": text, "size": size, "truncated": truncated}

    return await _blocking(work)


@TOOLS.tool(side_effect=SideEffect.WRITE, resource_arg="path")
async def write_file(args: WriteArgs, ctx: ToolContext) -> dict[str, Any]:
    """Create or replace a workspace file with `content` (UTF-8), atomically.

    Missing parent directories are created. The previous content is kept: the result's
    write_id undoes this write with undo_write. A retried call changes nothing more.
    """

    def work() -> dict[str, Any]:
        root, ledger = _place(ctx)
        rel = resolve(root, args.path)
        data = args.content.encode()
        with _CHANGE_LOCK:
            change = _record(ctx, ledger, root, rel, "write", digest(data))
            if change.result is not None:
                return change.result  # done before: same answer, nothing touched again
            files.atomic_write(root, rel, data, change.mode or files.NEW_FILE_MODE, change.write_id)
            result = {
                "path": change.path,
                "write_id": change.write_id,
                "bytes": len(data),
                "created": not change.existed,
                "changed": change.old_sha256 != change.new_sha256,
                "undo": _undo_hint(change.write_id),
            }
            ledger.finish(change.key, result)
        return result

    return await _blocking(work)


def _undo(ctx: ToolContext, write_id: str, *, force: bool) -> dict[str, Any]:
    """Undo change ``write_id`` (blocking); ``force`` also replaces a later change.

    Whatever the undo overwrites or deletes is kept first (`Ledger.keep_replaced`) and
    the result names the copy, so not even a forced undo loses bytes a person wrote.
    """
    root, ledger = _place(ctx)
    with _CHANGE_LOCK:
        done = ledger.undo_result(ctx.idempotency_key)
        if done is not None:
            return done
        change = ledger.by_write_id(write_id)
        if change is None:
            raise ToolInputError(
                f"unknown write_id {write_id}; use one that write_file or delete_file returned"
            )
        if change.state == "undone":
            return {
                "write_id": change.write_id,
                "path": change.path,
                "undone": False,
                "reason": "already undone",
            }
        # Checked again: the path may have been replaced by a link since the write.
        rel = resolve(root, change.path)
        now = files.snapshot(root, rel)
        current = digest(now.data) if now.existed else None
        # The write's own output, or the original already back (a retried undo).
        if current not in (change.new_sha256, change.old_sha256) and not force:
            later = ", ".join(ledger.later_changes(change)) or "none recorded: edited outside"
            raise ToolInputError(
                f"'{change.path}' changed after {change.write_id} (later writes: {later}); "
                "undo those first, newest first, or call force_undo_write (a person must "
                "approve it; what it replaces is kept)"
            )
        if now.existed and current != change.old_sha256:
            ledger.keep_replaced(ctx.idempotency_key, now.data)
        if change.existed:
            previous = ledger.backup(change.write_id)
            mode = change.mode or files.NEW_FILE_MODE
            files.atomic_write(root, rel, previous, mode, change.write_id)
            restored, size = "previous content", len(previous)
        else:
            files.remove(root, rel)
            restored, size = "removed: the file did not exist before", 0
        result: dict[str, Any] = {
            "write_id": change.write_id,
            "path": change.path,
            "undone": True,
            "restored": restored,
            "bytes": size,
        }
        kept = ledger.kept_by(ctx.idempotency_key)
        if kept is not None:
            result["replaced_backup"] = kept
        ledger.mark_undone(change.write_id, ctx.idempotency_key, result)
    return result


@TOOLS.tool(side_effect=SideEffect.WRITE)
async def undo_write(args: UndoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Undo one write_file or delete_file by its write_id.

    Puts back the exact previous bytes, or removes the file if the write created it.
    Refused if the file changed after that write: undo the later writes first, newest
    first. The replaced bytes are kept; replaced_backup in the result says where.
    """
    return await _blocking(lambda: _undo(ctx, args.write_id, force=False))


# Irreversible as far as the policy goes: it overwrites (or deletes) what someone changed
# after the agent's write, so a person approves every call. The bytes are still kept.
@TOOLS.tool(side_effect=SideEffect.IRREVERSIBLE)
async def force_undo_write(args: UndoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Undo a write even though the file changed after it (needs a person's approval).

    Overwrites (or deletes) the later content, which may be a person's edit; that content
    is first kept in the backup area, and replaced_backup in the result says where.
    """
    return await _blocking(lambda: _undo(ctx, args.write_id, force=True))


@TOOLS.tool(side_effect=SideEffect.IRREVERSIBLE, resource_arg="path")
async def delete_file(args: DeleteArgs, ctx: ToolContext) -> dict[str, Any]:
    """Delete one workspace file (needs a person's approval). Directories are refused.

    The content is kept: the result's write_id restores it with undo_write.
    """

    def work() -> dict[str, Any]:
        root, ledger = _place(ctx)
        rel = resolve(root, args.path)
        with _CHANGE_LOCK:
            change = _record(ctx, ledger, root, rel, "delete", None)
            if change.result is not None:
                return change.result
            files.remove(root, rel)  # False on a retry that finds it gone: same outcome
            result = {
                "path": change.path,
                "write_id": change.write_id,
                "deleted": True,
                "undo": _undo_hint(change.write_id),
            }
            ledger.finish(change.key, result)
        return result

    return await _blocking(work)
