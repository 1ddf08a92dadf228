"""Regenerate the hub's province segment table from the PyPI package `phone`.

Writes `hub/data/segments.csv` (CONTRACT.md, "Province routing": header `prefix,province`, prefixes
of 3 to 7 digits, longest match wins, province as party code) and `hub/data/segments.meta.json`
(source package and version, record counts, sha256 of the CSV, date generated).

Run from a checkout after `pip install '.[segments]'`:

    python scripts/build_segments.py

Source: `phone.dat` of phone==0.4.5 maps about 500,000 seven-digit prefixes (1300000..1999979) to
a record `province|city|zip|area code` and a carrier type. Every carrier is kept (mobile, unicom,
telecom, broadcast and the virtual operators): a ported number keeps its home province, and
whether it is the operator's subscriber is the CRM's answer, not this table's.

Compression. Longest match wins, so the table is shrunk to the fewest rows that give every
seven-digit prefix present in the source its province: a shorter prefix (3 to 6 digits) stands
for all the prefixes under it when they share a province, and a short prefix may carry the
majority province of its block with longer rows for the exceptions. The row count is minimised
exactly by dynamic programming over the digit trie (see `_solve`), and the result is checked
against every source prefix before anything is written.

The price of compression, chosen on purpose: a seven-digit prefix ABSENT from the source (not yet
allocated, or unknown to the package) that falls under an emitted shorter prefix resolves to that
prefix's province instead of to nothing (e.g. 1990000, which the source does not know, gets the
province the table gives the block around it). The source knows every three-digit prefix from
130 to 199, so in practice only numbers outside 130..199 stay unknown (`UNKNOWN_SEGMENT`). Numbers
in unallocated blocks are rare in real traffic and the CRM still answers `NOT_SUBSCRIBER` for
them; the alternative, one row per allocated prefix, is a 5 MB table that still could not tell
new allocations apart from bad numbers.

The CSV is deterministic (same source, same bytes); only the meta file carries the date.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path

SOURCE_PACKAGE = "phone"
SOURCE_VERSION = "0.4.5"
OUT_DIR = Path(__file__).resolve().parent.parent / "hub" / "data"
CSV_PATH = OUT_DIR / "segments.csv"
META_PATH = OUT_DIR / "segments.meta.json"

# phone.dat layout (read from phone/phone.py of 0.4.5): header "<4si" = data version and the
# offset of the first index entry; from offset 8 NUL-terminated UTF-8 records
# "province|city|zip|area_code"; then index entries "<iiB" = seven-digit prefix, record offset,
# carrier type, sorted by prefix.
HEAD_FMT = "<4si"
RECORD_START = 8
ENTRY_FMT = "<iiB"

# Province names as the package spells them -> party codes (ISO 3166-2:CN without "CN-").
PROVINCE_CODES: dict[str, str] = {
    "北京": "BJ", "天津": "TJ", "河北": "HE", "山西": "SX", "内蒙古": "NM", "辽宁": "LN",
    "吉林": "JL", "黑龙江": "HL", "上海": "SH", "江苏": "JS", "浙江": "ZJ", "安徽": "AH",
    "福建": "FJ", "江西": "JX", "山东": "SD", "河南": "HA", "湖北": "HB", "湖南": "HN",
    "广东": "GD", "广西": "GX", "海南": "HI", "重庆": "CQ", "四川": "SC", "贵州": "GZ",
    "云南": "YN", "西藏": "XZ", "陕西": "SN", "甘肃": "GS", "青海": "QH", "宁夏": "NX",
    "新疆": "XJ",
}  # fmt: skip
CODES: tuple[str, ...] = tuple(sorted(set(PROVINCE_CODES.values())))
NOTHING = len(CODES)  # index meaning "no shorter prefix answers here"


@dataclass(frozen=True)
class Source:
    data_version: str
    provinces: dict[str, str]  # seven-digit prefix -> Chinese province name
    carriers: Counter[int]


def read_source() -> Source:
    """Iterate over every index entry of phone.dat instead of calling find() per number."""
    installed = metadata.version(SOURCE_PACKAGE)
    if installed != SOURCE_VERSION:
        sys.exit(f"need {SOURCE_PACKAGE}=={SOURCE_VERSION}, found {installed}")
    buf = (resources.files(SOURCE_PACKAGE) / "phone.dat").read_bytes()
    version, first_entry = struct.unpack_from(HEAD_FMT, buf)
    records = _records(buf[RECORD_START:first_entry])
    provinces: dict[str, str] = {}
    carriers: Counter[int] = Counter()
    for prefix, offset, carrier in struct.iter_unpack(ENTRY_FMT, buf[first_entry:]):
        provinces[str(prefix)] = records[offset].split("|")[0]
        carriers[carrier] += 1
    return Source(version.decode("ascii"), provinces, carriers)


def _records(block: bytes) -> dict[int, str]:
    """Record text keyed by its absolute offset in phone.dat, as the index entries refer to it."""
    records: dict[int, str] = {}
    offset = RECORD_START
    for raw in block.split(b"\0")[:-1]:
        records[offset] = raw.decode("utf-8")
        offset += len(raw) + 1
    return records


def cross_check(source: Source) -> None:
    """Our parse must agree with the package's own lookup; sample, since find() is a bisection."""
    from phone import Phone  # only needed here; keeps the parse independent of the class

    phone = Phone()
    for prefix in sorted(source.provinces)[::997]:
        found = phone.find(prefix)
        if found is None or found["province"] != source.provinces[prefix]:
            sys.exit(f"parse disagrees with phone.find({prefix}): {found}")


def to_codes(provinces: dict[str, str]) -> dict[str, str]:
    unknown = sorted({name for name in provinces.values() if name not in PROVINCE_CODES})
    if unknown:
        raise SystemExit(f"unknown province names in {SOURCE_PACKAGE}: {unknown}")
    for prefix in provinces:
        if len(prefix) != 7 or not prefix.isdigit():
            raise SystemExit(f"source prefix {prefix!r} is not seven digits")
    return {prefix: PROVINCE_CODES[name] for prefix, name in provinces.items()}


@dataclass
class _Node:
    """A trie node for a 3..6 digit prefix: rows needed below it for each inherited answer."""

    children: list[str] = field(default_factory=list)
    cost: list[int] = field(default_factory=list)
    best: int = NOTHING  # the province worth emitting here, if any is
    emit: list[bool] = field(default_factory=list)  # per inherited answer: emit `best` here?


def compress(leaves: dict[str, str]) -> dict[str, str]:
    """Fewest prefix rows whose longest match gives every leaf its province."""
    index = {code: i for i, code in enumerate(CODES)}
    leaf_idx = {prefix: index[code] for prefix, code in leaves.items()}
    nodes = _solve(leaf_idx)
    table: dict[str, str] = {}
    for top in sorted(p for p in nodes if len(p) == 3):
        _emit(top, NOTHING, nodes, leaf_idx, table)
    return table


def _solve(leaves: dict[str, int]) -> dict[str, _Node]:
    nodes: dict[str, _Node] = defaultdict(_Node)
    for prefix in sorted(leaves):
        for length in range(3, 7):
            children = nodes[prefix[:length]].children
            if not children or children[-1] != prefix[: length + 1]:
                children.append(prefix[: length + 1])
    for length in (6, 5, 4, 3):  # bottom-up: children are solved before their parent
        for prefix in (p for p in nodes if len(p) == length):
            _solve_node(nodes[prefix], nodes, leaves)
    return nodes


def _solve_node(node: _Node, nodes: dict[str, _Node], leaves: dict[str, int]) -> None:
    # below[i]: rows the children need when the answer arriving from above is i
    below = [0] * (NOTHING + 1)
    for child in node.children:
        cost = nodes[child].cost if child in nodes else _leaf_cost(leaves[child])
        below = [a + b for a, b in zip(below, cost, strict=True)]
    # ties go to the first code, so the output is deterministic
    node.best = min(range(NOTHING), key=lambda i: (below[i], i))
    emitted = 1 + below[node.best]
    node.emit = [emitted < b for b in below]  # a tie keeps the row out
    node.cost = [min(emitted, b) for b in below]


def _leaf_cost(province: int) -> list[int]:
    return [0 if i == province else 1 for i in range(NOTHING + 1)]


def _emit(prefix: str, inherited: int, nodes: dict[str, _Node], leaves: dict[str, int],
          table: dict[str, str]) -> None:  # fmt: skip
    if prefix in leaves:
        if leaves[prefix] != inherited:
            table[prefix] = CODES[leaves[prefix]]
        return
    node = nodes[prefix]
    if node.emit[inherited]:
        table[prefix] = CODES[node.best]
        inherited = node.best
    for child in node.children:
        _emit(child, inherited, nodes, leaves, table)


def verify(table: dict[str, str], leaves: dict[str, str]) -> None:
    """Compression must not change the answer for any prefix the source knows."""
    for prefix, code in leaves.items():
        found = next((table[prefix[:n]] for n in range(7, 2, -1) if prefix[:n] in table), None)
        if found != code:
            raise SystemExit(f"compression broke {prefix}: want {code}, table says {found}")


def write(table: dict[str, str], source: Source) -> None:
    lines = ["prefix,province"] + [f"{prefix},{table[prefix]}" for prefix in sorted(table)]
    data = ("\n".join(lines) + "\n").encode("ascii")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    CSV_PATH.write_bytes(data)
    meta = {
        "source": {"package": SOURCE_PACKAGE, "version": SOURCE_VERSION,
                   "data_version": source.data_version},
        "source_records": len(source.provinces),
        "source_records_by_carrier": _carrier_counts(source.carriers),
        "rows": len(table),
        "sha256": hashlib.sha256(data).hexdigest(),
        "generated": datetime.now(UTC).date().isoformat(),
    }  # fmt: skip
    META_PATH.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _carrier_counts(carriers: Counter[int]) -> dict[str, int]:
    """Named as the package names them, to show that no carrier was dropped."""
    from phone import Phone

    return {f"{kind} {Phone.get_phone_no_type(kind)}": carriers[kind] for kind in sorted(carriers)}


def main() -> None:
    source = read_source()
    cross_check(source)
    leaves = to_codes(source.provinces)
    table = compress(leaves)
    verify(table, leaves)
    write(table, source)
    print(f"{len(source.provinces)} source prefixes -> {len(table)} rows, "
          f"{CSV_PATH.stat().st_size} bytes in {CSV_PATH}")  # fmt: skip


if __name__ == "__main__":
    main()
