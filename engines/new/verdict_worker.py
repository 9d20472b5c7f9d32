"""Install-deps verdicts of a snapshot, worked out in a second process.

Deciding candidates is single-threaded Python, and its costliest step is
asking, for every install-deps failure, whether its dependency relations
are satisfied now. That question needs only the run table and
``all_debian_versions``, so a worker process can answer it on the machine's
other core while the main process loads, aggregates and starts deciding.
The worker runs the engine's own code (:func:`details_verdict` on a
:class:`DependencyResolver`), so its answers are the ones the engine would
have computed; when it fails, the engine computes them itself.

The worker is a fresh interpreter running this module (``python -m``), not
a multiprocessing child: those re-import the caller's main script, which a
library cannot ask of its callers. Its verdicts come back pickled on stdout.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from engines.bulk import bulk_allocation
from engines.model import versions_by_source
from engines.new.aggregates import DEPS_UNSATISFIED
from engines.new.success import text_verdicts

log = logging.getLogger("engines.new")

Verdicts = dict[str, tuple[bool, str | None]]


def relation_verdicts(runs_file: str | Path, snapshot: str | Path) -> Verdicts:
    """failure_details text → (satisfied now, what the legacy would raise), per distinct text.

    Every install-deps failure with details is answered, transient ones
    included (unused, but filtering here would repeat the aggregation's rules).
    Campaign dependencies play no part in a verdict.
    """
    from harness.data.snapshot import load_debian_versions

    table = pq.read_table(runs_file, columns=["result_code", "failure_details"])
    wanted = pc.and_(
        pc.equal(table.column("result_code"), DEPS_UNSATISFIED),
        pc.is_valid(table.column("failure_details")),
    )
    texts = pc.unique(table.column("failure_details").filter(wanted)).to_pylist()
    rows = load_debian_versions(snapshot)
    return text_verdicts(texts, None if rows is None else versions_by_source(rows))


class VerdictWorker:
    """A running worker; :meth:`verdicts` waits for its answer."""

    def __init__(self, runs_file: Path, snapshot: Path) -> None:
        # The worker imports this project from where the caller did, installed or not.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(runs_file), str(snapshot)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )

    def verdicts(self) -> Verdicts | None:
        """The worker's verdicts, or ``None`` (the engine then works them out itself)."""
        out, err = self.process.communicate()
        if self.process.returncode != 0:
            problem = err.decode(errors="replace").strip().splitlines()
            log.warning(
                "install-deps verdict worker failed, deciding in-process: %s",
                problem[-1] if problem else f"exit status {self.process.returncode}",
            )
            return None
        verdicts: Verdicts = pickle.loads(out)
        return verdicts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def main(argv: list[str]) -> int:
    runs_file, snapshot = argv
    with bulk_allocation():  # decoding 100,000s of texts: nothing cyclic to collect
        verdicts = relation_verdicts(runs_file, snapshot)
    sys.stdout.buffer.write(pickle.dumps(verdicts, pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
