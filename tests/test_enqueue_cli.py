"""``janitor-shadow enqueue``: dry run, real writes, fallback mode, errors, passwords."""

from __future__ import annotations

import pytest
import redis

from engines.base import get_engine
from harness.cli import EXIT_USAGE, main
from harness.data.sources import schedule_source
from harness.enqueue import items_from_schedule, open_target

SCENARIO = "rules/quirk_truncation_ties_broken_by_insertion_order"


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.redis
def test_dry_run_writes_nothing_and_says_what_would_happen(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "default", "--to", redis_url, "--dry-run", "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("add ")
    assert "… and 790 more" in out
    assert _last_line(out).startswith(f"dry run, nothing written to {redis_url}: 792 entries")
    assert "added 792, moved 0" in _last_line(out)
    assert redis.Redis.from_url(redis_url).dbsize() == 0


@pytest.mark.redis
def test_enqueue_writes_the_schedule_and_a_rerun_changes_nothing(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "default", "--to", redis_url, "--batch-size", "100"]) == 0
    first = _last_line(capsys.readouterr().out)
    assert "in 8 batches" in first and "added 792, moved 0, updated 0" in first
    expected = items_from_schedule(schedule_source(get_engine("new"), "default"))
    with open_target(redis_url) as target:
        assert target.entries() == expected
    assert main(["enqueue", "default", "--to", redis_url, "--show", "0"]) == 0
    again = capsys.readouterr().out
    assert again.count("\n") == 1
    assert "added 0, moved 0, updated 0, left alone 792 (792 unchanged" in again
    # another profile moves entries; the dry run lists them as moves
    parity = ["enqueue", "default", "--engine", "new:parity", "--to", redis_url, "--dry-run"]
    assert main(parity) == 0
    assert capsys.readouterr().out.startswith("move ")


@pytest.mark.redis
def test_fallback_mode_lets_the_legacy_decide_what_the_engine_failed_on(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = "support_engines:simple:error"
    assert main(["enqueue", SCENARIO, "--engine", failing, "--to", redis_url]) == 0
    alone = capsys.readouterr().out
    fallback = ["enqueue", SCENARIO, "--engine", failing, "--mode", "fallback"]
    assert main([*fallback, "--to", redis_url]) == 0
    out = capsys.readouterr().out
    assert "note: fallback: the legacy decided 1 candidate(s)" in out
    assert "added 1," in _last_line(out)
    assert "added 1," not in _last_line(alone)
    with open_target(redis_url) as target:
        engine_alone = items_from_schedule(schedule_source(get_engine(failing), SCENARIO))
        assert len(target.entries()) == len(engine_alone) + 1


@pytest.mark.postgres
def test_enqueue_into_the_queue_table_of_the_source_database(
    janitor_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", "default", janitor_db]) == 0
    capsys.readouterr()
    assert main(["enqueue", janitor_db, "--to", janitor_db, "--dry-run", "--show", "0"]) == 0
    assert "would be added 792, moved 0" in capsys.readouterr().out
    assert main(["enqueue", janitor_db, "--to", janitor_db, "--show", "0"]) == 0
    assert "added 792" in capsys.readouterr().out
    with open_target(janitor_db) as target:
        assert len(target.entries()) == 792


def test_unreachable_target_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["enqueue", "default", "--to", "redis://:hunter2@127.0.0.1:1/0", "--dry-run"])
    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "janitor-shadow: error: cannot connect to redis://127.0.0.1:1/0"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "ftp://h/x"], "unsupported queue URL (scheme 'ftp'"),
        (["--to", "redis://127.0.0.1:1/0", "--batch-size", "0"], "--batch-size"),
        (["--to", "redis://127.0.0.1:1/0", "--engine", "nope"], "unknown engine"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "default", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_other_commands_cannot_write_a_queue() -> None:
    """Writing needs the enqueue command: no other command takes a queue URL."""
    from harness.cli import cli

    for name, command in cli.commands.items():
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        if name != "enqueue":
            assert "--to" not in options, name


def test_the_commands_default_batch_size_is_the_librarys() -> None:
    from harness.cli.commands import enqueue
    from harness.enqueue import DEFAULT_BATCH_SIZE

    assert enqueue.DEFAULT_BATCH_SIZE == DEFAULT_BATCH_SIZE
