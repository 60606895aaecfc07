"""Changed lines since the merge base with a ref, so ``--diff`` can keep only touched methods."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from covgen.errors import GitError

__all__ = ["DiffChanges", "changed_lines", "diff_changes"]


@dataclass(frozen=True, slots=True)
class DiffChanges:
    """What changed since the merge base: lines per root-relative path, renames, deletions."""

    ref: str
    lines: dict[str, set[int]]
    #: New path → old path, for files git saw moved (their unchanged lines are not changes).
    renamed: dict[str, str]
    deleted: tuple[str, ...]


def changed_lines(root: Path, ref: str) -> dict[str, set[int]]:
    """Map each root-relative path to the lines added or changed since ``merge-base(ref, HEAD)``."""
    return diff_changes(root, ref).lines


def diff_changes(root: Path, ref: str) -> DiffChanges:
    """Read the changes since ``merge-base(ref, HEAD)`` with git and unidiff.

    The working tree counts (a developer runs this before committing), and so do untracked files.
    A renamed file counts only the lines its move changed, as diff-cover counts them: moving a
    file is not writing it. A deleted file has no lines left to cover.
    """
    from unidiff.patch import PatchSet

    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    base = _git(root, "merge-base", ref, "HEAD").strip()
    # diff-cover's flags: no colour or external diff drivers, no context lines; renames found.
    patch = PatchSet(_git(root, "diff", "--no-color", "--no-ext-diff", "--find-renames", "-U0", base, "--"))
    changed: dict[str, set[int]] = {}
    renamed: dict[str, str] = {}
    deleted: list[str] = []
    resolved_root = root.resolve()
    for patched in patch:
        if patched.is_removed_file:
            old = _relative(top / patched.path, resolved_root)
            if old is not None:
                deleted.append(old)
            continue
        if patched.is_rename:
            new, old = (_relative(top / name.split("/", 1)[-1], resolved_root) for name in (patched.target_file, patched.source_file))
            if new is not None and old is not None:
                renamed[new] = old
        lines = {line.target_line_no for hunk in patched for line in hunk if line.is_added and line.target_line_no}
        if lines:
            _add(changed, top / patched.path, resolved_root, lines)
    for untracked in _git(root, "ls-files", "--others", "--exclude-standard", "--full-name").splitlines():
        path = top / untracked
        try:
            count = len(path.read_bytes().splitlines())
        except OSError:
            continue
        _add(changed, path, resolved_root, set(range(1, count + 1)))
    return DiffChanges(ref, changed, renamed, tuple(sorted(deleted)))


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None  # changed outside the project root: not ours to target


def _add(changed: dict[str, set[int]], path: Path, root: Path, lines: set[int]) -> None:
    relative = _relative(path, root)
    if relative is not None:
        changed.setdefault(relative, set()).update(lines)


def _git(root: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GitError(f"--diff needs git: {err}") from err
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["git failed"])[-1]
        raise GitError(f"--diff: git {args[0]} failed: {message}")
    return result.stdout
