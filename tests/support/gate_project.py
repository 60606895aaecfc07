"""A small Python project in a real git repository, with changes on a branch: the gate's ground truth.

The numbers it yields are counted by hand in ``tests/test_gate.py``'s docstring.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PRICING_BASE = """\
def total(prices):
    result = 0
    for price in prices:
        result += price
    return result
"""
PRICING_FEATURE = PRICING_BASE + """

def discount(price, code):
    if code == "HALF":
        return price / 2
    if code == "TENTH":
        return price * 0.9
    return price
"""
LEGACY = """\
def shout(text):
    return text.upper()


def whisper(text):
    return text.lower()
"""
TESTS_BASE = """\
from shop.pricing import total


def test_total():
    assert total([1, 2]) == 3
"""
TESTS_FEATURE = """\
from shop.extra import double
from shop.pricing import discount, total


def test_total():
    assert total([1, 2]) == 3


def test_half():
    assert discount(10, "HALF") == 5


def test_double():
    assert double(2) == 4
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout


def coverage_reports(root: Path, out: Path, *, cwd: Path | None = None, kinds: tuple[str, ...] = ("json", "lcov", "xml")) -> dict[str, Path]:
    """Run the project's tests under coverage.py (branch) and write the report formats asked for."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / ".coverage"
    subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", "--source=shop", f"--data-file={data}",
                    "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, check=True, capture_output=True)
    reports = {"coveragepy": out / "coverage.json", "lcov": out / "coverage.lcov", "cobertura": out / "coverage.xml"}
    for kind, path in (("json", reports["coveragepy"]), ("lcov", reports["lcov"]), ("xml", reports["cobertura"])):
        if kind not in kinds:
            continue
        subprocess.run([sys.executable, "-m", "coverage", kind, f"--data-file={data}", "-o", str(path)],
                       cwd=cwd or root, check=True, capture_output=True)
    return reports


def make_repo(root: Path) -> None:
    """``main`` with the base project, ``feature`` checked out with the changes described above."""
    (root / "shop").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "pricing.py").write_text(PRICING_BASE)
    (root / "shop" / "legacy.py").write_text(LEGACY)
    (root / "shop" / "gone.py").write_text("def old():\n    return 1\n")
    (root / "tests" / "test_pricing.py").write_text(TESTS_BASE)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text("out/\n.coverage*\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-qb", "feature")
    (root / "shop" / "pricing.py").write_text(PRICING_FEATURE)
    git(root, "mv", "shop/legacy.py", "shop/util.py")
    (root / "shop" / "util.py").write_text(LEGACY.replace("text.lower()", 'text.lower() + "..."'))
    git(root, "rm", "-q", "shop/gone.py")
    (root / "shop" / "extra.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "tests" / "test_pricing.py").write_text(TESTS_FEATURE)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "feature")
