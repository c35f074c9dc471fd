"""Unit tests of the local spool (worker/spool.py): records survive as written, oldest first,
and one that cannot be read is set aside, never retried for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker.errors import SpoolError
from worker.spool import Spool

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_records_are_read_back_oldest_first_and_removed_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    later = spool.write({"n": "2"}, now=NOW + timedelta(seconds=1))
    first = spool.write({"n": "1", "text": "你好\x00"}, now=NOW)

    assert spool.pending() == [first, later]
    assert spool.read(first) == {"n": "1", "text": "你好\x00"}
    spool.remove(first)
    spool.remove(first)  # another process removed it first: not an error
    assert spool.read(first) is None
    assert spool.pending() == [later]


def test_an_empty_or_missing_folder_has_nothing_pending(tmp_path: Path) -> None:
    assert Spool(tmp_path / "never-made").pending() == []


def test_a_record_that_cannot_be_read_is_a_typed_error_and_can_be_set_aside(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    broken = tmp_path / "20261124T080000000000Z-x.json"
    broken.write_text("[1, 2")

    with pytest.raises(SpoolError):
        spool.read(broken)
    spool.set_aside(broken)

    assert spool.pending() == []


def test_a_folder_that_cannot_be_written_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(SpoolError):
        Spool(blocker / "spool").write({"n": "1"}, now=NOW)
