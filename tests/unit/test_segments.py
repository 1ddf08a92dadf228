"""The province segment table (hub/segments.py) and the shipped hub/data/segments.csv."""

from __future__ import annotations

import hashlib
import json
import re
import time
from importlib import resources
from pathlib import Path

import pytest

from contracts.routing import PROVINCES
from hub.segments import SegmentError, SegmentTable

SHIPPED = resources.files("hub") / "data"
# The phone package's province names, in the order of contracts.routing.PROVINCES.
NAMES = """北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 河南
湖北 湖南 广东 广西 海南 重庆 四川 贵州 云南 西藏 陕西 甘肃 青海 宁夏 新疆"""


def write_csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> SegmentTable:
    return SegmentTable.load()


# --- lookups -------------------------------------------------------------------------------


def test_longest_prefix_wins() -> None:
    table = SegmentTable.from_rows({"138": "GD", "13800": "BJ", "1380013": "SH"})
    assert table.province_of("13800130000") == "SH"
    assert table.province_of("13800990000") == "BJ"
    assert table.province_of("13899990000") == "GD"


def test_override_beats_prefix() -> None:
    table = SegmentTable.from_rows({"1380013": "BJ"}, overrides={"13800138000": "GD"})
    assert table.province_of("13800138000") == "GD"
    assert table.province_of("13800138001") == "BJ"


def test_unknown_number_has_no_province() -> None:
    table = SegmentTable.from_rows({"138": "GD"})
    assert table.province_of("13900000000") is None


@pytest.mark.parametrize(
    "phone", ["1380013800", "138001380000", "1380013800x", "+8613800138", "", "１3800138000"]
)
def test_a_number_that_is_not_eleven_ascii_digits_has_no_province(phone: str) -> None:
    table = SegmentTable.from_rows({"138": "GD"}, overrides={"13800138000": "BJ"})
    assert table.province_of(phone) is None


def test_prefixes_of_lists_one_provinces_prefixes_sorted() -> None:
    table = SegmentTable.from_rows({"1391": "GD", "138": "GD", "1380": "BJ"})
    assert table.prefixes_of("GD") == ["138", "1391"]
    assert table.prefixes_of("XZ") == []
    assert len(table) == 3


def test_the_table_cannot_be_changed_after_building() -> None:
    table = SegmentTable.from_rows({"138": "GD"})
    with pytest.raises(TypeError):
        table.prefixes["139"] = "BJ"  # type: ignore[index]


# --- loading files -------------------------------------------------------------------------


def test_files_load_with_overrides(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "seg.csv", "prefix,province\r\n138,GD\r\n1390100,BJ\r\n\r\n")
    extra = write_csv(tmp_path, "over.csv", "\ufeffphone,province\n13800138000,SH\n")
    table = SegmentTable.load(path, overrides=extra)
    assert len(table) == 2
    assert table.province_of("13901001234") == "BJ"
    assert table.province_of("13800138000") == "SH"
    assert table.province_of("13800138001") == "GD"


def test_a_repeated_prefix_with_the_same_province_is_harmless(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "seg.csv", "prefix,province\n138,GD\n138,GD\n")
    assert len(SegmentTable.load(path)) == 1


def test_bad_header_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "seg.csv", "prefix;province\n138,GD\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(path))}:1: header .*'prefix;province'"):
        SegmentTable.load(path)


def test_an_override_file_needs_the_phone_header(tmp_path: Path) -> None:
    extra = write_csv(tmp_path, "over.csv", "prefix,province\n13800138000,GD\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(extra))}:1: header"):
        SegmentTable.load(write_csv(tmp_path, "seg.csv", "prefix,province\n"), overrides=extra)


def test_an_empty_file_is_a_bad_header(tmp_path: Path) -> None:
    with pytest.raises(SegmentError, match=r":1: header"):
        SegmentTable.load(write_csv(tmp_path, "seg.csv", ""))


@pytest.mark.parametrize("prefix", ["13", "13800138", "13a", " 138", ""])
def test_a_prefix_outside_three_to_seven_digits_names_the_line_and_value(tmp_path: Path, prefix: str) -> None:
    path = write_csv(tmp_path, "seg.csv", f"prefix,province\n139,BJ\n\n{prefix},GD\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(path))}:4: bad prefix '{prefix}'"):
        SegmentTable.load(path)


def test_an_override_phone_must_have_eleven_digits(tmp_path: Path) -> None:
    extra = write_csv(tmp_path, "over.csv", "phone,province\n13800138000,GD\n1380013800,GD\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(extra))}:3: bad phone '1380013800'"):
        SegmentTable.load(write_csv(tmp_path, "seg.csv", "prefix,province\n"), overrides=extra)


@pytest.mark.parametrize("province", ["广东", "gd", "CN-GD", "HK", ""])
def test_a_province_must_be_a_party_code(tmp_path: Path, province: str) -> None:
    path = write_csv(tmp_path, "seg.csv", f"prefix,province\n138,{province}\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(path))}:2: unknown province '{province}'"):
        SegmentTable.load(path)


def test_a_prefix_given_two_provinces_names_the_second_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "seg.csv", "prefix,province\n138,GD\n139,BJ\n138,SH\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(path))}:4: prefix '138' is GD above, now 'SH'"):
        SegmentTable.load(path)


def test_a_row_with_the_wrong_number_of_fields_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "seg.csv", "prefix,province\n138,GD,extra\n")
    with pytest.raises(SegmentError, match=rf"{re.escape(str(path))}:2: want 2 fields, got 3"):
        SegmentTable.load(path)


def test_rows_from_memory_are_validated_too() -> None:
    with pytest.raises(SegmentError, match=r"<prefixes>:2: unknown province 'Guangdong'"):
        SegmentTable.from_rows({"139": "BJ", "138": "Guangdong"})
    with pytest.raises(SegmentError, match=r"<overrides>:1: bad phone '138'"):
        SegmentTable.from_rows({}, overrides={"138": "GD"})


def test_a_segment_error_is_a_value_error() -> None:
    assert issubclass(SegmentError, ValueError)


# --- the shipped table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "province"),
    [
        ("13901001234", "BJ"),  # China Mobile, Beijing
        ("13800138000", "BJ"),  # China Mobile's own service number: Beijing, not Guangdong
        ("13802201234", "GD"),  # China Mobile, Shenzhen
        ("18607551234", "GD"),  # China Unicom, Shenzhen
        ("13816001234", "SH"),  # China Mobile, Shanghai
        ("13312345678", "GZ"),  # China Telecom, Zunyi
        ("19912345678", "HE"),  # China Telecom, Tangshan
        ("13490001234", "BJ"),  # a mobile virtual operator's block
    ],
)
def test_shipped_table_knows_well_known_numbers(shipped: SegmentTable, phone: str, province: str) -> None:
    assert shipped.province_of(phone) == province


def test_shipped_table_leaves_numbers_outside_130_to_199_unknown(shipped: SegmentTable) -> None:
    assert shipped.province_of("12000000000") is None
    assert shipped.province_of("10086000000") is None


def test_shipped_table_covers_every_province(shipped: SegmentTable) -> None:
    assert {p for p in PROVINCES if shipped.prefixes_of(p)} == set(PROVINCES)


def test_shipped_table_matches_its_meta_checksum() -> None:
    data = (SHIPPED / "segments.csv").read_bytes()
    meta = json.loads((SHIPPED / "segments.meta.json").read_text(encoding="utf-8"))
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert data.count(b"\n") - 1 == meta["rows"] == len(SegmentTable.load())
    assert meta["source"]["package"] == "phone"


def test_shipped_table_is_sorted_by_prefix() -> None:
    lines = (SHIPPED / "segments.csv").read_text(encoding="utf-8").splitlines()[1:]
    prefixes = [line.split(",")[0] for line in lines]
    assert prefixes == sorted(prefixes)


def test_shipped_table_loads_fast() -> None:
    started = time.perf_counter()
    SegmentTable.load()
    assert time.perf_counter() - started < 0.5


def test_shipped_table_agrees_with_the_phone_package(shipped: SegmentTable) -> None:
    phone = pytest.importorskip("phone")
    codes = dict(zip(NAMES.split(), PROVINCES, strict=True))
    finder = phone.Phone()
    checked = 0
    for number in range(1300000, 2000000, 97):  # a spread sample; the build checks them all
        found = finder.find(str(number))
        if found is not None:
            assert shipped.province_of(f"{number}0000") == codes[found["province"]], number
            checked += 1
    assert checked > 5000
