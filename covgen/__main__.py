"""``python -m covgen``."""

from covgen.cli import console

console()
