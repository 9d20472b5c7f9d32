"""Install-deps verdicts of a snapshot, worked out in a second process.

Deciding candidates is single-threaded Python, and its costliest step is
asking, for every install-deps failure, whether its dependency relations
are satisfied now. That question needs only the run table and
``all_debian_versions``, so a worker process can answer it on the machine's
other core while the main process loads, aggregates and starts deciding.
The worker runs the engine's own code (:func:`details_verdict` on a
:class:`DependencyResolver`), so its answers are the ones the engine would
have computed; when it fails, the engine computes them itself.

The answer is a code per run-table row (:class:`RowVerdicts`), not a map
from ``failure_details`` texts: a few MB instead of the texts' 20 at
2,000,000 runs, and the main process looks its rows up on arrays without
ever building their texts.

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

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engines.bulk import bulk_allocation
from engines.model import versions_by_source
from engines.new.aggregates import DEPS_UNSATISFIED, UNKNOWN_VERDICT, RowVerdicts, verdict_codes
from engines.new.success import text_verdicts

log = logging.getLogger("engines.new")


def row_verdicts(runs_file: str | Path, snapshot: str | Path) -> RowVerdicts:
    """The verdict of every install-deps failure with details, by run-table row.

    Transient failures are answered too (unused, but filtering here would
    repeat the aggregation's rules). Campaign dependencies play no part in a
    verdict. Each distinct text is decided once.
    """
    from harness.data.snapshot import load_debian_versions

    table = pq.read_table(runs_file, columns=["result_code", "failure_details"], use_threads=False)
    details = table.column("failure_details")
    wanted = pc.and_(
        pc.equal(table.column("result_code"), DEPS_UNSATISFIED), pc.is_valid(details)
    ).fill_null(False)
    rows = np.flatnonzero(wanted.to_numpy(zero_copy_only=False))
    # filter, not take: Arrow's take on a column of many chunks copies the whole column
    texts = pc.filter(details, wanted).combine_chunks().dictionary_encode()
    distinct = texts.dictionary.to_pylist()
    versions = load_debian_versions(snapshot)
    verdicts = text_verdicts(distinct, None if versions is None else versions_by_source(versions))
    per_text, outcomes = verdict_codes(distinct, verdicts)
    codes = np.full(len(table), UNKNOWN_VERDICT, dtype=np.int32)
    codes[rows] = per_text[texts.indices.to_numpy(zero_copy_only=False)]
    return RowVerdicts(codes, outcomes)


class VerdictWorker:
    """A running worker; :meth:`verdicts` waits for its answer."""

    def __init__(self, runs_file: Path, snapshot: Path) -> None:
        # The worker imports this project from where the caller did, installed or not.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            # -P: the working directory must not shadow the project (python -m puts it first)
            [sys.executable, "-P", "-m", __name__, str(runs_file), str(snapshot)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )

    def verdicts(self) -> RowVerdicts | None:
        """The worker's verdicts, or ``None`` (the engine then works them out itself)."""
        out, err = self.process.communicate()
        if self.process.returncode != 0:
            problem = err.decode(errors="replace").strip().splitlines()
            log.warning(
                "install-deps verdict worker failed, deciding in-process: %s",
                problem[-1] if problem else f"exit status {self.process.returncode}",
            )
            return None
        try:
            verdicts = pickle.loads(out)
        except Exception as exc:  # a worker of another version, or worse: only costs time
            log.warning(
                "install-deps verdict worker answered nonsense, deciding in-process: %r", exc
            )
            return None
        if not isinstance(verdicts, RowVerdicts):
            log.warning(
                "install-deps verdict worker answered a %s, deciding in-process",
                type(verdicts).__name__,
            )
            return None
        return verdicts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def main(argv: list[str]) -> int:
    runs_file, snapshot = argv
    with bulk_allocation():  # decoding 100,000s of texts: nothing cyclic to collect
        verdicts = row_verdicts(runs_file, snapshot)
    sys.stdout.buffer.write(pickle.dumps(verdicts, pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
