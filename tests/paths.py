"""Where the suite's own data lives: everything a test reads is inside the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The golden vectors (computed by the real legacy scheduler), copied in from
#: the project's shared material so that a clone on its own can run the suite.
VECTORS = ROOT / "tests" / "data" / "vectors"
