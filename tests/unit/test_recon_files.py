"""The reconciliation file format: written and read back, and each defect named by its line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.flows.reconciliation import Window
from hub.recon.files import BANK_FIELDS, FileDefect, FileWriter, Header, read_file, sha256_of
from hub.recon.staging import Announced, Comparison, check_bytes

RECORD = ("BA1", "13800138000", "3445", "ACTIVE", "PREPAID", "1000", "5000", "N", "2026-11-25T10:00:00+08:00",
          "2026-11-25T10:00:00+08:00")  # fmt: skip
WINDOW = Window.of(date(2026, 11, 25), "MONTHLY")


def _write(path: Path, records: list[tuple[str, ...]]) -> str:
    with FileWriter(path, Header("bank.ICBC", date(2026, 11, 25), "MONTHLY", len(records))) as w:
        for r in records:
            w.write(r)
    return w.sha256


def test_a_written_file_reads_back_with_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    digest = _write(path, [RECORD, ("BA2", *RECORD[1:])])
    assert digest == sha256_of(path)
    items = list(read_file(path, BANK_FIELDS))
    assert items[0] == Header("bank.ICBC", date(2026, 11, 25), "MONTHLY", 2) and items[1] == RECORD
    assert path.read_bytes().endswith(b"\nT|2\n")


@pytest.mark.parametrize(("mutate", "line"), [
    (lambda t: t.replace("H|bank.ICBC|20261125", "H|bank.ICBC|20261325"), "line 1:"),
    (lambda t: t.replace("T|2", "T|3"), "line 4:"),
    (lambda t: t.replace("13800138000", "1380013800", 1), "line 2:"),
    (lambda t: t.replace("|N|", "|X|", 2), "line 2:"),
    (lambda t: t.replace("T|2\n", "T|2"), "line 4:"),
])  # fmt: skip
def test_each_defect_is_named_by_its_line(tmp_path: Path, mutate: object, line: str) -> None:
    path = tmp_path / "f.txt"
    _write(path, [RECORD, ("BA2", *RECORD[1:])])
    path.write_text(mutate(path.read_text()))  # type: ignore[operator]
    with pytest.raises(FileDefect, match=f"^{line}"):
        list(read_file(path, BANK_FIELDS))


def test_duckdb_finds_a_bad_record_before_the_join_and_the_reader_names_it(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    _write(path, [RECORD, ("BA2", *RECORD[1:4], "PREPAYED", *RECORD[5:])])
    check_bytes(path, Announced("bank.ICBC", date(2026, 11, 25), "MONTHLY", 2, sha256_of(path)))
    comparison = Comparison(tmp_path / "work.duckdb")
    try:
        with pytest.raises(FileDefect, match=r"^line 3: user_type"):
            comparison.compare(
                "bank", path, str(tmp_path / "hub.db"), "ICBC", WINDOW.start, WINDOW.end, False
            )
    finally:
        comparison.close(remove=True)


def test_the_byte_pass_finds_an_empty_line(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    _write(path, [RECORD])
    path.write_bytes(path.read_bytes().replace(b"\nT|1", b"\n\nT|1"))
    with pytest.raises(FileDefect, match=r"^line 3: an empty line"):
        check_bytes(path, Announced("bank.ICBC", date(2026, 11, 25), "MONTHLY", 1, sha256_of(path)))
