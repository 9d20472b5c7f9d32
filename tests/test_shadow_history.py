"""The shadow service's history file, its report and its secret scrubbing (no server needed)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.errors import InputError
from harness.service.history import append_record, prune, read_history
from harness.service.secrets import MASK, Scrubber
from reports.shadow_history import render_history

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _record(cycle: int, *, status: str = "ok", at: datetime | None = None, **extra: Any) -> dict:
    moment = at or T0 + timedelta(minutes=5 * cycle)
    record: dict[str, Any] = {"cycle": cycle, "status": status, "started_at": moment.isoformat()}
    if status == "ok":
        record.update(
            candidates=100,
            divergences={"real": cycle, "waived": 1, "noise": 0},
            fields={"offset": cycle, "success_probability": 2},
            campaigns={"lintian-fixes": {"divergent": cycle, "real": cycle, "candidates": 50}},
            rank={"kendall_tau_b": 0.9, "rbo": 0.8},
            production={"kendall_tau_b": 0.7, "rbo": 0.6},
            durations={"total": 1.5, "read_s": 0.5},
        )
    record.update(extra)
    return record


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=6),
    st.floats(0.0, 1.0),
)
def test_a_cut_short_write_never_corrupts_the_history(sizes: list[int], cut: float) -> None:
    """Whatever byte a crash stops at, the history reads as a prefix of what was
    appended, and the next append starts clean."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        records = [_record(i + 1, note="x" * size * 50) for i, size in enumerate(sizes)]
        for record in records:
            append_record(path, record)
        data = path.read_bytes()
        keep = int(len(data) * cut)
        with open(path, "r+b") as f:
            f.truncate(keep)
        read = read_history(path).records
        assert list(read) == records[: len(read)]
        whole = data[:keep].count(b"\n")  # a record that lost only its newline is whole too
        assert len(read) in (whole, whole + 1)
        append_record(path, _record(99))
        again = read_history(path)
        assert again.skipped == 0
        assert [r["cycle"] for r in again.records] == [r["cycle"] for r in read] + [99]


def test_a_bad_line_inside_the_history_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "history.jsonl"
    append_record(path, _record(1))
    with open(path, "ab") as f:
        f.write(b"{not json\n")
    append_record(path, _record(2))
    with pytest.raises(InputError, match="record 2"):
        read_history(path)
    assert main(["shadow-report", str(path), "--report", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "history.jsonl" in err and "record 2" in err
    assert not (tmp_path / "r.html").exists()


def test_retention_by_age_and_by_count(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    now = T0 + timedelta(days=10)
    for day in range(10):
        append_record(path, _record(day + 1, at=T0 + timedelta(days=day)))
    inode = os.stat(path).st_ino
    assert prune(path, max_age_s=None, max_records=None, now=now) == 0
    assert os.stat(path).st_ino == inode  # nothing to drop: not rewritten
    # days 0..9, now day 10: older than 3.5 days are days 0..6
    assert prune(path, max_age_s=3.5 * 86400, max_records=None, now=now) == 7
    assert [r["cycle"] for r in read_history(path).records] == [8, 9, 10]
    assert prune(path, max_age_s=None, max_records=2, now=now) == 1
    assert [r["cycle"] for r in read_history(path).records] == [9, 10]
    assert not list(tmp_path.glob(".*.janitor-shadow-tmp"))


def test_report_marks_failures_and_escapes_untrusted_names() -> None:
    records = [
        _record(1),
        _record(2, status="failed", phase="read", error="SourceError: <b>gone</b>"),
        _record(3, campaigns={"<script>x</script>": {"divergent": 4}}),
        _record(4, status="abandoned", phase="engines", error="stop requested"),
        _record(5),
    ]
    html = render_history(records)
    assert html.count('<path class="failed"') == 5  # one line on each of the five charts
    assert html.count('<path class="abandoned"') == 5
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    assert "<b>gone" not in html and "&lt;b&gt;gone" in html
    # three completed cycles: three points per series on the divergence chart
    divergent = html.split('id="divergent"')[1].split("</svg>")[0]
    assert divergent.count('class="mark"') == 3 * 3
    assert render_history([]).count("no cycles yet") == 5


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="*\x00", codec="utf-8"), min_size=3))
def test_passwords_never_survive_scrubbing(password: str) -> None:
    dsn = f"postgresql://janitor:{quote(password, safe='')}@db:5432/janitor"
    scrub = Scrubber.for_urls(dsn, None)
    text = scrub(f"cannot connect to {dsn}: password {password!s} refused; password={password}")
    assert password not in text
    assert quote(password, safe="") not in text
    assert MASK in text


def test_url_shaped_passwords_of_unknown_urls_are_masked() -> None:
    scrub = Scrubber()
    assert scrub("redis://:hunter2@cache:6379/0 and postgresql://u:pw@h/db") == (
        f"redis://:{MASK}@cache:6379/0 and postgresql://u:{MASK}@h/db"
    )
    assert scrub("host=db password='a b' user=x") == f"host=db password={MASK} user=x"
