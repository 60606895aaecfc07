"""``python -m covgen``."""

import sys

from covgen.cli import main

sys.exit(main())
