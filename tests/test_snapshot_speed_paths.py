"""The snapshot reader's fast paths give exactly what the careful, record-by-record path gives.

The fast paths exist only for speed (a 100k-candidate snapshot). Whatever
they accept must decode to the same objects, with the same value types, as
the careful decoders; whatever they do not accept must fall back, so that a
bad file still raises the careful path's error, naming file, record and field.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.bulk import columnwise_builder
from engines.model import (
    Candidate,
    CandidateKey,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    Run,
)
from harness.data import run_table, snapshot
from harness.errors import InputError

VALID: dict[str, dict[str, Any]] = {
    "codebase": {"name": "foo", "branch_url": "https://example.org/foo", "value": 3},
    "candidate": {
        "id": 1,
        "codebase": "foo",
        "suite": "lintian-fixes",
        "change_set": None,
        "context": "ctx",
        "value": 10,
        "success_chance": 0.5,
        "command": "lintian-brush",
        "publish_policy": "p",
    },
    "all_debian_versions": {"source": "foo", "distribution": "unstable", "version": "1.0-1"},
    "candidate_row_order": {"codebase": "foo", "campaign": "lintian-fixes", "change_set": None},
}
FAST_TABLES = sorted(VALID)
ODD_VALUES: list[Any] = [None, 0, 7, -1, 1.0, 0.25, True, False, "", "x", [], {}, ["x"]]
MISSING = object()


def _outcome(call: Callable[[], list[Any]]) -> tuple[str, Any]:
    """What a decode produced: the objects with the type of every value, or the error text."""
    try:
        decoded = call()
    except InputError as exc:
        return ("error", str(exc))
    typed = []
    for item in decoded:
        values = tuple(item) if isinstance(item, tuple) else snapshot_values(item)
        typed.append((type(item), values, tuple(type(v) for v in values)))
    return ("ok", typed)


def snapshot_values(item: Any) -> tuple[Any, ...]:
    return tuple(getattr(item, name) for name in item.__slots__)


def _fast_and_careful(table: str, path: Path) -> tuple[tuple[str, Any], tuple[str, Any]]:
    decode = snapshot._decoders()[table]
    fast = _outcome(lambda: snapshot._decode_table(table, path, decode))
    careful_decode = snapshot._decoders()[table]  # a fresh one: the candidate decoder counts ids
    careful = _outcome(
        lambda: snapshot._decode_all(snapshot._jsonl_records(path), careful_decode, str(path))
    )
    return fast, careful


def _write(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(lines)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _line(record: Any) -> bytes:
    return orjson.dumps(record) + b"\n"


@pytest.mark.parametrize("table", FAST_TABLES)
def test_written_tables_take_the_fast_path(table: str, tmp_path: Path) -> None:
    rows = [dict(VALID[table]) for _ in range(3)]
    if table == "candidate":
        for ident, row in enumerate(rows, start=1):
            row.update(id=ident, codebase=f"foo{ident}")
    path = _write(tmp_path / f"{table}.jsonl.gz", [_line(r) for r in rows])
    records = snapshot._whole_records(path)
    assert records is not None
    decoded = snapshot._FAST_TABLES[table].decode(records)
    assert decoded is not None and len(decoded) == 3
    fast, careful = _fast_and_careful(table, path)
    assert fast == careful


@pytest.mark.parametrize("table", FAST_TABLES)
@pytest.mark.parametrize("odd", [MISSING, *ODD_VALUES])
def test_any_field_value_decodes_or_fails_as_the_careful_path(
    table: str, odd: Any, tmp_path: Path
) -> None:
    for field in VALID[table]:
        bad = dict(VALID[table])
        if odd is MISSING:
            del bad[field]
        else:
            bad[field] = odd
        good = dict(VALID[table])
        if table == "candidate":
            good.update(id=2, codebase="bar")
        path = _write(tmp_path / f"{table}-{field}.jsonl", [_line(good), _line(bad)])
        fast, careful = _fast_and_careful(table, path)
        assert fast == careful, (field, odd)


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(-5, 5), max_size=2),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=st.sampled_from(FAST_TABLES),
    changes=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 20), json_values | st.just(MISSING)),
        max_size=4,
    ),
    extra=st.dictionaries(st.sampled_from(["x", "note"]), json_values, max_size=1),
    compress=st.booleans(),
)
def test_random_tables_decode_as_the_careful_path(
    tmp_path: Path,
    table: str,
    changes: list[tuple[int, int, Any]],
    extra: dict[str, Any],
    compress: bool,
) -> None:
    rows = []
    for index in range(4):
        row = dict(VALID[table], **extra)
        if table == "candidate":
            row.update(id=index + 1, codebase=f"foo{index}")
        rows.append(row)
    fields = list(VALID[table])
    for index, which, value in changes:
        field = fields[which % len(fields)]
        if value is MISSING:
            rows[index].pop(field, None)
        else:
            rows[index][field] = value
    suffix = ".jsonl.gz" if compress else ".jsonl"
    path = _write(tmp_path / f"{table}{suffix}", [_line(r) for r in rows])
    fast, careful = _fast_and_careful(table, path)
    assert fast == careful


@pytest.mark.parametrize(
    "lines",
    [
        [b"", b"\n"],  # empty file, and a single blank line
        [b'{"a": 1}\n', b"\n", b'{"a": 2}\n'],  # a blank line in the middle
        [b'{"a": 1}\r\n', b'{"a": 2}\r\n'],  # CRLF
        [b'{"a": 1}\n', b'{"a": 2}'],  # no final newline
        [b'{"a": 1}\n', b"   \n"],  # whitespace-only last line
        [b'{"a": 1} {"a": 2}\n'],  # two values on one line
        [b'{"a": 1,\n', b'"b": 2}\n'],  # one value over two lines
        [b"BAD\n", b'{"a": 1}\n'],  # bad JSON first
        [b'{"a": 1}\n', b"BAD\n"],  # a field error comes before the JSON error after it
        [b"[1, 2]\n"],  # not an object
        [b'{"a": 1, "a": 2}\n'],  # a repeated key: the last one counts
        [b'{"a": NaN}\n'],
        [b'{"a": "\xff"}\n'],
    ],
)
@pytest.mark.parametrize("table", FAST_TABLES)
def test_odd_files_decode_or_fail_as_the_careful_path(
    table: str, lines: list[bytes], tmp_path: Path
) -> None:
    valid = orjson.dumps(VALID[table])
    text = [line.replace(b'{"a": 1}', valid).replace(b'{"a": 2}', valid) for line in lines]
    if table == "candidate":  # distinct ids, so that nothing else differs
        text = [
            t.replace(b'"id":1,', b'"id":%d,' % (n + 1), 1) if t.count(b'"id":1,') == 1 else t
            for n, t in enumerate(text)
        ]
    for suffix in (".jsonl", ".jsonl.gz"):
        path = _write(tmp_path / f"{table}{suffix}", text)
        fast, careful = _fast_and_careful(table, path)
        assert fast == careful


def test_truncated_gzip_fails_as_the_careful_path(tmp_path: Path) -> None:
    rows = [dict(VALID["codebase"], name=f"c{i}") for i in range(2000)]
    path = _write(tmp_path / "codebase.jsonl.gz", [_line(r) for r in rows])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    fast, careful = _fast_and_careful("codebase", path)
    assert fast == careful
    assert fast[0] == "error" and "codebase.jsonl.gz" in fast[1]


def test_written_snapshot_loads_without_the_careful_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot as ``write_snapshot`` writes it never needs the slow decoders for its big tables."""
    from datetime import datetime

    from engines.model import PolicyEntry

    candidates = tuple(
        Candidate(i, f"cb{i}", "lintian-fixes", "lintian-brush", None, "c", i, 0.5, "p")
        for i in range(1, 6)
    )
    dataset = Dataset(
        as_of=datetime(2025, 6, 1),
        codebases=tuple(Codebase(f"cb{i}", None, i) for i in range(1, 6)),
        candidates=candidates,
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "push"),)),),
        runs=(),
        debian_versions=(DebianVersion("cb1", "1.0", "unstable"),),
        candidate_row_order=tuple(c.key for c in reversed(candidates)),
    )
    snap = snapshot.write_snapshot(dataset, tmp_path / "snap")
    careful: list[str] = []
    original = snapshot._decode_all

    def spy(records: Any, decode: Any, file: str) -> list[Any]:
        careful.append(Path(file).name)
        return original(records, decode, file)

    monkeypatch.setattr(snapshot, "_decode_all", spy)
    loaded = snapshot.load_snapshot(snap)
    assert loaded == dataset
    assert all(isinstance(k, CandidateKey) for k in loaded.candidate_row_order or ())
    assert sorted(careful) == [
        "named_publish_policy.jsonl.gz",
        "queue.jsonl.gz",
        "run.jsonl.gz",
    ]


def test_row_order_naming_no_candidate_is_still_reported(tmp_path: Path) -> None:
    from datetime import datetime

    dataset = Dataset(
        as_of=datetime(2025, 6, 1),
        codebases=(Codebase("a", None, 1),),
        candidates=(Candidate(1, "a", "s", "cmd", publish_policy="p"),),
        policies=(NamedPublishPolicy("p", ()),),
        runs=(),
        debian_versions=None,
        candidate_row_order=(CandidateKey("a", "s", None), CandidateKey("b", "s", "cs")),
    )
    snap = snapshot.write_snapshot(dataset, tmp_path / "snap")
    with pytest.raises(
        InputError, match=r"record candidate_row_order 2: names no candidate: b/s \[cs\]"
    ):
        snapshot.load_snapshot(snap)


@pytest.mark.parametrize(
    ("model", "rows"),
    [
        (Codebase, [("a", None, 1), ("b", "https://x", None)]),
        (DebianVersion, [("a", "1.0", None), ("b", "2:1-1", "sid")]),
        (
            Candidate,
            [
                (1, "a", "s", "cmd", None, None, None, None, None),
                (2, "b", "t", "c", "cs", "x", 3, 0.5, "p"),
            ],
        ),
        (CandidateKey, [("a", "s", None)]),
    ],
)
def test_columnwise_building_equals_the_constructor(
    model: Any, rows: list[tuple[Any, ...]]
) -> None:
    names = snapshot._FastTable.of(model, dict.fromkeys(model.__annotations__, frozenset())).names
    built = columnwise_builder(model, names)(list(zip(*rows, strict=True)))
    expected = [model(*row) for row in rows]
    assert built == expected
    assert [repr(b) for b in built] == [repr(e) for e in expected]
    assert [hash(b) for b in built] == [hash(e) for e in expected]


def test_columnwise_building_respects_post_init() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            if not self.name:
                raise ValueError("empty")

    build = columnwise_builder(Checked, ("name",))
    assert build([("a",)]) == [Checked("a")]
    with pytest.raises(ValueError, match="empty"):
        build([("",)])


# ------------------------------------------------------------ the Parquet run table


def _runs(count: int) -> list[Run]:
    return [
        Run(
            f"r{i}",
            f"cb{i % 7}",
            "lintian-fixes" if i % 2 else "fresh",
            "success" if i % 3 else "worker-failure",
            None if i % 11 == 0 else 1_700_000_000_000_000 + i,
            None if i % 13 == 0 else 1_700_000_000_500_000 + i,
            None if i % 5 == 0 else bool(i % 2),
            None if i % 4 else f"ic{i % 3}",
            None if i % 6 == 0 else f"ctx{i % 9}",
            None if i % 3 else {"relations": [[{"name": f"p{i}", "version": None}]]},
        )
        for i in range(count)
    ]


def test_run_table_round_trips_over_several_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_table, "BATCH_ROWS", 17)  # several row groups, each its own dictionary
    runs = _runs(100)
    run_table.write_runs(runs, tmp_path / "run.parquet")
    loaded = run_table.read_runs(tmp_path / "run.parquet")
    assert loaded == runs
    assert all(type(r) is Run for r in loaded)
    assert [tuple(map(type, r)) for r in loaded] == [tuple(map(type, r)) for r in runs]
    # Equal strings of the repeating columns are one object.
    assert len({id(r.codebase) for r in loaded}) == 7


def test_empty_and_all_null_run_tables_round_trip(tmp_path: Path) -> None:
    run_table.write_runs([], tmp_path / "empty.parquet")
    assert run_table.read_runs(tmp_path / "empty.parquet") == []
    nulls = [Run("a", "cb", "s", "success", None, None)]
    run_table.write_runs(nulls, tmp_path / "nulls.parquet")
    assert run_table.read_runs(tmp_path / "nulls.parquet") == nulls


def _table_with(column: str, values: Any, kind: Any = None) -> Any:
    import pyarrow as pa

    runs = _runs(3)
    arrays = {
        name: pa.array([r[i] for r in runs], type)
        if name not in ("start_time", "finish_time", "failure_details")
        else pa.array([None] * 3, type)
        for i, (name, type) in enumerate(
            zip(run_table.SCHEMA.names, run_table.SCHEMA.types, strict=True)
        )
    }
    arrays[column] = pa.array(values, kind)
    return pa.table(arrays)


@pytest.mark.parametrize(
    ("column", "values", "kind", "message"),
    [
        ("codebase", [1, 2, 3], None, "field 'codebase': expected type string, got int64"),
        (
            "suite",
            ["a", "b", "a"],
            "dictionary",
            "field 'suite': expected type string, got dictionary<values=string, indices=int32, ordered=0>",
        ),
        (
            "result_code",
            ["a", None, "b"],
            None,
            "record 2, field 'result_code': expected a string, got null",
        ),
        ("id", [None, "x", "y"], None, "record 1, field 'id': expected a string, got null"),
        (
            "failure_details",
            [None, "{}", "{nope"],
            None,
            "record 3, field 'failure_details': invalid JSON",
        ),
    ],
)
def test_bad_run_tables_are_named(
    tmp_path: Path, column: str, values: list[Any], kind: Any, message: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "dictionary":
        table = _table_with(column, values).set_column(
            run_table.SCHEMA.get_field_index(column),
            column,
            pa.array(values).dictionary_encode(),
        )
    else:
        table = _table_with(column, values, kind)
    pq.write_table(table, tmp_path / "run.parquet")
    with pytest.raises(InputError) as caught:
        run_table.read_runs(tmp_path / "run.parquet")
    assert str(caught.value).startswith(str(tmp_path / "run.parquet") + ", ")
    assert message in str(caught.value)


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    (tmp_path / "run.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"run\.parquet: cannot read Parquet: "):
        run_table.read_runs(tmp_path / "run.parquet")


def test_columnwise_building_respects_a_named_tuple_subclass() -> None:
    class Upper(CandidateKey):
        __slots__ = ()

        def __new__(cls, codebase: str, campaign: str, change_set: str | None) -> Upper:
            return super().__new__(cls, codebase.upper(), campaign, change_set)

    build = columnwise_builder(Upper, CandidateKey._fields)
    assert build([("a",), ("s",), (None,)]) == [("A", "s", None)]
