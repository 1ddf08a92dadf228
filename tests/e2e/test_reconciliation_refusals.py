"""A file with any defect is refused whole (`recon.result` REJECTED, the reason naming the line)
and nothing changes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import Hub
from tests.support.probe import Probe
from tests.support.recon import announce_raw, bank_line, reconcile, signed, today


def _file(records: list[tuple[str, ...]], *, count: int | None = None, trailer: str | None = None,
          sender: str = "bank.ICBC", eol: str = "\n") -> bytes:  # fmt: skip
    n = len(records)
    lines = [f"H|{sender}|{today():%Y%m%d}|MONTHLY|{n if count is None else count}",
             *("D|" + "|".join(r) for r in records), trailer if trailer is not None else f"T|{n}"]  # fmt: skip
    return "".join(line + eol for line in lines).encode()


async def _refused(hub: Hub, probe: Probe, name: str, data: bytes, **announce: Any) -> str:
    folder = Path(hub.settings.files) / "inbound" / "bank.ICBC"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    body = {"file_name": name, "business_date": today().isoformat(), "scope": "MONTHLY",
            "record_count": data.count(b"\n") - 2, "sha256": hashlib.sha256(data).hexdigest()} | announce  # fmt: skip
    answer = await announce_raw(probe, "bank.ICBC", body)
    assert answer.body["status"] == "REJECTED", answer.body
    assert set(answer.body["counts"]) == {
        "MISSING_AT_HUB",
        "MISSING_AT_BANK",
        "STATUS_MISMATCH",
        "TERMS_MISMATCH",
    }
    return str(answer.body["reason"])


@pytest.fixture
async def signed_pair(probe: Probe) -> list[dict[str, Any]]:
    return [await signed(probe, "ICBC") for _ in range(2)]


async def _unchanged(hub: Hub, agreements: list[dict[str, Any]]) -> None:
    for a in agreements:
        rows = await hub.store.query("SELECT version, status FROM agreements WHERE agreement_id=?",
                                     (a["agreement_id"],))  # fmt: skip
        assert rows == [{"version": 1, "status": "ACTIVE"}]


async def test_a_header_from_another_sender_is_refused(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    reason = await _refused(hub, probe, "HDR.txt", _file([bank_line(a, amt="1") for a in signed_pair],
                                                          sender="bank.CCB"))  # fmt: skip
    assert reason.startswith("line 1:") and "bank.CCB" in reason
    await _unchanged(hub, signed_pair)


async def test_a_header_count_that_does_not_match_is_refused(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    data = _file([bank_line(a, status="CANCELLED") for a in signed_pair], count=3)
    reason = await _refused(hub, probe, "CNT.txt", data, record_count=2)
    assert reason.startswith("line 1:") and "3 records" in reason
    await _unchanged(hub, signed_pair)


async def test_a_wrong_trailer_is_refused(hub: Hub, probe: Probe, signed_pair: list[Any]) -> None:
    reason = await _refused(
        hub, probe, "TRL.txt", _file([bank_line(a, amt="1") for a in signed_pair], trailer="T|5")
    )
    assert reason.startswith("line 4:") and "trailer" in reason
    await _unchanged(hub, signed_pair)


async def test_a_checksum_that_does_not_match_is_refused(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    reason = await _refused(hub, probe, "SHA.txt", _file([bank_line(a, amt="1") for a in signed_pair]),
                            sha256="0" * 64)  # fmt: skip
    assert "sha256" in reason
    await _unchanged(hub, signed_pair)


async def test_a_malformed_record_is_refused_naming_its_line(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    records = [bank_line(signed_pair[0], amt="1"), bank_line(signed_pair[1], phone="1380000")]
    reason = await _refused(hub, probe, "REC.txt", _file(records))
    assert reason.startswith("line 3:") and "phone" in reason
    await _unchanged(hub, signed_pair)


async def test_a_record_twice_and_crlf_line_ends_are_refused(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    twice = await _refused(hub, probe, "DUP.txt", _file([bank_line(signed_pair[0], amt="1")] * 2))
    assert twice.startswith("line 3:") and "twice" in twice
    crlf = await _refused(
        hub, probe, "CRLF.txt", _file([bank_line(a, amt="1") for a in signed_pair], eol="\r\n")
    )
    assert crlf.startswith("line 1:") and "CR" in crlf
    await _unchanged(hub, signed_pair)


async def test_a_missing_file_is_refused(hub: Hub, probe: Probe) -> None:
    body = {"file_name": "NOFILE.txt", "business_date": today().isoformat(), "scope": "MONTHLY",
            "record_count": 0, "sha256": "0" * 64}  # fmt: skip
    answer = await announce_raw(probe, "bank.ICBC", body)
    assert answer.body["status"] == "REJECTED" and "NOFILE.txt" in answer.body["reason"]


async def test_a_record_that_is_not_utf8_is_refused_naming_its_line(
    hub: Hub, probe: Probe, signed_pair: list[Any]
) -> None:
    data = _file([bank_line(a, amt="1") for a in signed_pair]).replace(b"|3445|", b"|34\xff5|", 1)
    reason = await _refused(hub, probe, "UTF.txt", data)
    assert reason.startswith("line 2:") and "UTF-8" in reason
    await _unchanged(hub, signed_pair)


async def test_a_link_to_a_file_outside_the_area_is_refused_without_showing_that_file(
    hub: Hub, probe: Probe, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"SECRET-FIRST-LINE\nSECRET-LAST-LINE\n")
    folder = Path(hub.settings.files) / "inbound" / "bank.ICBC"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "LINK.txt").symlink_to(secret)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    for announced in (digest, "0" * 64):  # the right checksum gets further in the file, a wrong one less far
        body = {"file_name": "LINK.txt", "business_date": today().isoformat(), "scope": "MONTHLY",
                "record_count": 0, "sha256": announced}  # fmt: skip
        answer = await announce_raw(probe, "bank.ICBC", body)
        reason = answer.body["reason"]
        assert answer.body["status"] == "REJECTED" and "LINK.txt is a link" in reason, answer.body
        assert "SECRET" not in reason and digest not in reason


async def test_a_link_at_the_name_the_hub_writes_an_error_file_under_is_replaced_and_its_target_kept(
    hub: Hub, probe: Probe, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    folder = Path(hub.settings.files) / "outbound" / "crm.GD"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ERR_LINKED.txt.part").symlink_to(victim)
    answer = await reconcile(hub, probe, "crm.GD", [], answer="recon.errors", file_name="LINKED.txt")
    assert answer is not None and answer.type == "recon.errors", answer.body
    assert victim.read_text() == "keep me\n"
    written = folder / "ERR_LINKED.txt"
    assert not written.is_symlink() and hashlib.sha256(written.read_bytes()).hexdigest() == answer.body["sha256"]
