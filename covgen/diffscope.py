"""Changed lines since the merge base with a ref, so ``--diff`` can keep only touched methods."""

from __future__ import annotations

import subprocess
from pathlib import Path

from covgen.errors import GitError

__all__ = ["changed_lines"]


def changed_lines(root: Path, ref: str) -> dict[str, set[int]]:
    """Map each root-relative path to the lines added or changed since ``merge-base(ref, HEAD)``.

    The working tree counts (a developer runs this before committing), and so do untracked files.
    """
    from unidiff.patch import PatchSet

    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    base = _git(root, "merge-base", ref, "HEAD").strip()
    # diff-cover's flags: no colour or external diff drivers, no context lines.
    patch = PatchSet(_git(root, "diff", "--no-color", "--no-ext-diff", "--no-renames", "-U0", base, "--"))
    changed: dict[str, set[int]] = {}
    resolved_root = root.resolve()
    for patched in patch:
        if patched.is_removed_file:
            continue
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
    return changed


def _add(changed: dict[str, set[int]], path: Path, root: Path, lines: set[int]) -> None:
    try:
        relative = path.resolve().relative_to(root).as_posix()
    except ValueError:
        return  # changed outside the project root: not ours to target
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
