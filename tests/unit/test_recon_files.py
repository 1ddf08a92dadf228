"""The reconciliation file format: written and read back, and each defect named by its line."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from hub.flows.reconciliation import Window
from hub.recon.files import BANK_FIELDS, FileDefect, FileWriter, Header, read_file, sha256_of
from hub.recon.staging import Announced, Comparison, Inbound, check_bytes

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


# --- the file area: no link followed, no content echoed -----------------------------------------


def _inbound(files: Path, name: str = "f.txt") -> Path:
    folder = files / "inbound" / "bank.ICBC"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_link_at_a_file_name_in_the_inbound_folder_is_refused_without_reading_its_target(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("H|bank.ICBC|20261125|MONTHLY|0\nT|0\n")  # even a well-formed file elsewhere
    _inbound(tmp_path / "files").symlink_to(secret)
    with pytest.raises(FileDefect, match=r"^line 1: f\.txt is a link") as refused:
        Inbound(tmp_path / "files", "bank.ICBC", "f.txt")
    assert "H|" not in str(refused.value)


def test_a_party_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _write(elsewhere / "f.txt", [RECORD])
    (tmp_path / "files" / "inbound").mkdir(parents=True)
    (tmp_path / "files" / "inbound" / "bank.ICBC").symlink_to(elsewhere)
    with pytest.raises(FileDefect, match="inbound folder is a link"):
        Inbound(tmp_path / "files", "bank.ICBC", "f.txt")


def test_a_fifo_or_a_folder_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(_inbound(tmp_path / "files", "fifo.txt"))  # opened without blocking, then refused
    _inbound(tmp_path / "files", "dir.txt").mkdir()
    for name in ("fifo.txt", "dir.txt", ".."):
        with pytest.raises(FileDefect, match="not a regular file"):
            Inbound(tmp_path / "files", "bank.ICBC", name)


def test_an_opened_file_is_read_whole_even_when_its_name_becomes_a_link(tmp_path: Path) -> None:
    path = _inbound(tmp_path / "files")
    digest = _write(path, [RECORD])
    with Inbound(tmp_path / "files", "bank.ICBC", "f.txt") as inbound:
        path.unlink()
        path.symlink_to(tmp_path / "secret.txt")  # swapped after the hub opened the file
        check_bytes(inbound.path, Announced("bank.ICBC", date(2026, 11, 25), "MONTHLY", 1, digest))


def test_a_link_at_the_temporary_name_of_a_written_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = tmp_path / "outbound" / "crm.GD" / "ERR_f.txt"
    target.parent.mkdir(parents=True)
    target.with_name("ERR_f.txt.part").symlink_to(victim)
    target.symlink_to(victim)
    digest = _write(target, [RECORD])
    assert victim.read_text() == "keep me\n"
    assert not target.is_symlink() and sha256_of(target) == digest
    assert not target.with_name("ERR_f.txt.part").exists()


def test_a_folder_that_is_a_link_inside_the_area_is_not_written_into(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "files" / "outbound").mkdir(parents=True)
    (tmp_path / "files" / "outbound" / "crm.GD").symlink_to(elsewhere)
    header = Header("hub.UPS", date(2026, 11, 25), "MONTHLY", 0)
    with pytest.raises(OSError), FileWriter(tmp_path / "files" / "outbound" / "crm.GD" / "ERR_f.txt", header,
                                            within=tmp_path / "files"):  # fmt: skip
        pass
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("mutate", [
    lambda t: t.replace("H|bank.ICBC|20261125|MONTHLY|2", "SECRET-HEADER"),
    lambda t: t.replace("H|bank.ICBC|", "H|SECRET.SENDER|"),
    lambda t: t.replace("13800138000", "SECRET-PHONE", 1),
    lambda t: t.replace("T|2", "SECRET-TRAILER"),
    lambda t: t.replace("D|BA2|", "SECRET|BA2|"),
    lambda t: t.replace("2026-11-25T10:00:00+08:00", "2026-13-25T10:00:00+08:00", 1),
    lambda t: t.replace("D|BA2|", "D|BA1|"),
])  # fmt: skip
def test_a_refusal_names_the_line_and_the_field_but_never_shows_the_files_content(
    tmp_path: Path, mutate: Callable[[str], str]
) -> None:
    path = tmp_path / "f.txt"
    _write(path, [RECORD, ("BA2", *RECORD[1:])])
    path.write_text(mutate(path.read_text()))
    comparison = Comparison(tmp_path / "work.duckdb")
    try:
        with pytest.raises(FileDefect) as refused:
            check_bytes(path, Announced("bank.ICBC", date(2026, 11, 25), "MONTHLY", 2, sha256_of(path)))
            comparison.compare("bank", path, str(tmp_path / "hub.db"), "ICBC", WINDOW.start, WINDOW.end, False)
    finally:
        comparison.close(remove=True)
    reason = str(refused.value)
    assert reason.startswith("line ") and not any(s in reason for s in ("SECRET", "2026-13", "BA1")), reason


def test_a_checksum_refusal_does_not_show_the_files_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    digest = _write(path, [RECORD])
    with pytest.raises(FileDefect, match="sha256") as refused:
        check_bytes(path, Announced("bank.ICBC", date(2026, 11, 25), "MONTHLY", 1, "0" * 64))
    assert digest not in str(refused.value)
