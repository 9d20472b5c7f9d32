"""``python -m harness.cli``: the command line, as the installed script runs it."""

import sys

from harness.cli import main

sys.exit(main())
