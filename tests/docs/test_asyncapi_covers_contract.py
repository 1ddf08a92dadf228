"""The generated AsyncAPI document covers every message and field that docs/CONTRACT.md names.

The contract's catalogue tables are parsed, not copied: a row added to CONTRACT.md without a
matching model (or a model that drops a field) fails here.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from contracts.asyncapi import build_document, dump

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "docs" / "CONTRACT.md"
SHARED_CONTRACT = REPO.parent / "shared" / "CONTRACT.md"

# Section heading -> (direction, party kind) of the messages in its table. The BOSS tables (1.1)
# are not `### ` headings but lines "From BOSS (...), 1.1:" / "To BOSS (...), 1.1:" in `### BOSS`.
SECTIONS = {
    "From a bank": ("inbound", "bank"),
    "To a bank": ("outbound", "bank"),
    "From a provincial CRM": ("inbound", "crm"),
    "To a provincial CRM": ("outbound", "crm"),
    "From BOSS": ("inbound", "boss"),
    "To BOSS": ("outbound", "boss"),
}
# A body cell "as from a bank" takes the bank's row of the same type; what follows a comma adds to it
# ("as from a bank, **scope** `CREDITS`").
REUSE = {"as from a bank": ("inbound", "bank"), "as to a bank": ("outbound", "bank")}
_TABLE_LINE = re.compile(r"^(From|To) BOSS \(.*:$")

_BACKTICKED = re.compile(r"`[^`]*`(?:\s*/\s*`[^`]*`)*")
_PARENTHESISED = re.compile(r"\([^()]*\)")
_FIELD = re.compile(r"(\*\*)?([a-z][a-z0-9_]*)(\*\*)?")

Key = tuple[str, str, str]  # direction, kind, type


@dataclass
class Row:
    """What one catalogue row says about a message's body."""

    fields: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)


# --- parsing CONTRACT.md ------------------------------------------------------------------


def parse_body(body: str) -> Row:
    """Field names of a body cell; bold ones outside "X or Y" and "when ..." are required."""
    row = Row()
    text = _BACKTICKED.sub("", _PARENTHESISED.sub("", body))
    conditional = False
    for item in (part.strip() for part in text.split(",")):
        if ":" in item:
            # "and when `APPROVED` the CRM's terms: **user_type**": what follows is conditional.
            lead, item = item.split(":", 1)
            conditional = conditional or "when" in lead
            item = item.strip()
        alternatives = re.split(r"\s+or\s+", item)
        for part in (p for alt in alternatives for p in re.split(r"\s+and\s+", alt)):
            match = _FIELD.fullmatch(part.strip())
            assert match, f"cannot read a field name from {part!r} in {body!r}"
            bold, name = bool(match.group(1) and match.group(3)), match.group(2)
            row.fields.add(name)
            if bold and not conditional and len(alternatives) == 1:
                row.required.add(name)
    return row


def _section_tables(text: str) -> dict[str, list[tuple[str, str]]]:
    """(type cell, body cell) of every table row, by the heading of its section."""
    tables: dict[str, list[tuple[str, str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:].split(" (")[0].strip()
        elif _TABLE_LINE.match(line):
            heading = line.split(" (")[0].strip()
        elif heading in SECTIONS and line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            tables.setdefault(heading, []).append((cells[0], cells[1]))
    return tables


def _boss_rows(text: str, contract: dict[Key, Row]) -> dict[Key, Row]:
    """The relay of `### BOSS`'s opening paragraph (its 1.1 tables are read as sections)."""
    paragraph = text.split("### BOSS", 1)[1].split("###", 1)[0].split("From BOSS", 1)[0]
    relay = re.search(r"to `boss\.<PROV>\.(\S+)` on `signhub\.outbound` \(same\s+body\)", paragraph)
    answer = re.search(r"`boss\.<PROV>\.(\S+)` \(([^)]*)\)", paragraph)
    assert relay and answer, "the BOSS paragraph no longer reads as expected"
    synced_type = answer.group(1).rstrip("`")
    return {
        ("outbound", "boss", relay.group(1).rstrip("`")): contract[("inbound", "crm", "boss.sync")],
        ("inbound", "boss", synced_type): parse_body(answer.group(2)),
    }


def _reused(body: str) -> tuple[tuple[str, str], str] | None:
    """(direction, kind) of the row an "as from/to a bank" cell reuses, and the rest of the cell."""
    lead, _, rest = body.partition(",")
    return (REUSE[lead.strip()], rest.strip()) if lead.strip() in REUSE else None


def parse_contract(text: str) -> dict[Key, Row]:
    """Every (direction, kind, type) the contract's catalogue names, with its body."""
    contract: dict[Key, Row] = {}
    reused: list[tuple[Key, Key, str]] = []
    for heading, rows in _section_tables(text).items():
        direction, kind = SECTIONS[heading]
        for type_cell, body in rows:
            for msg_type in re.findall(r"`([a-z.]+)`", type_cell):
                key = (direction, kind, msg_type)
                if (reuse := _reused(body)) is not None:
                    reused.append((key, (*reuse[0], msg_type), reuse[1]))
                else:
                    contract[key] = parse_body(body)
    for key, source, rest in reused:
        base, extra = contract[source], parse_body(rest) if rest else Row()
        contract[key] = Row(base.fields | extra.fields, base.required | extra.required)
    contract.update(_boss_rows(text, contract))
    return contract


# --- reading the generated document -------------------------------------------------------


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> Any:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def documented_messages(document: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    """The messages on the inbound and outbound exchange channels, by (direction, kind, type)."""
    found: dict[Key, dict[str, Any]] = {}
    for direction in ("inbound", "outbound"):
        for ref in document["channels"][direction]["messages"].values():
            message = _resolve(document, ref)
            kind, msg_type = message["name"].split(".", 1)
            found[(direction, kind, msg_type)] = message
    return found


def missing_messages(contract: dict[Key, Row], document: dict[str, Any]) -> list[Key]:
    """Messages the contract names that the document lacks."""
    return sorted(set(contract) - set(documented_messages(document)))


def missing_fields(contract: dict[Key, Row], document: dict[str, Any], *, required: bool) -> list[str]:
    """Fields the contract names (`required`: those it requires) that a documented payload lacks
    (`required`: does not require). A missing message is `missing_messages`'s finding."""
    messages = documented_messages(document)
    where = "required" if required else "properties"
    empty: Any = [] if required else {}
    return [
        f"{'.'.join(key)}: {name}"
        for key, row in sorted(contract.items())
        if key in messages
        for name in sorted(row.required if required else row.fields)
        if name not in _resolve(document, messages[key]["payload"]).get(where, empty)
    ]


@pytest.fixture(scope="module")
def contract() -> dict[Key, Row]:
    return parse_contract(CONTRACT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


# --- tests --------------------------------------------------------------------------------


def test_the_contract_parser_finds_every_catalogue_table(contract: dict[Key, Row]) -> None:
    per_section = {(d, k): sum(1 for key in contract if key[:2] == (d, k)) for d, k in SECTIONS.values()}
    # 8 bank inbound, 11 bank outbound (unsign/modify.result share a row), 7 CRM inbound, 11 CRM
    # outbound; BOSS: the relay's agreement.synced / agreement.sync and the 1.1 tables (3 in, 4 out).
    assert per_section == {
        ("inbound", "bank"): 8,
        ("outbound", "bank"): 11,
        ("inbound", "crm"): 7,
        ("outbound", "crm"): 11,
        ("inbound", "boss"): 4,
        ("outbound", "boss"): 5,
    }
    assert ("outbound", "boss", "agreement.sync") in contract
    assert ("inbound", "boss", "agreement.synced") in contract


def test_the_contract_parser_reads_the_flow_4_rows_of_version_1_1(contract: dict[Key, Row]) -> None:
    request = contract[("inbound", "boss", "recharge.request")]
    assert request.required == {"recharge_id", "phone", "trigger"}
    assert request.fields == {"recharge_id", "phone", "trigger", "balance", "amount", "bill_id", "agreement_id",
                              "requested_at"}  # fmt: skip
    debit = contract[("inbound", "bank", "debit.result")]
    assert debit.required == {"debit_id", "result", "amount"}
    assert {"reason_code", "bank_txn_no", "debited_at"} <= debit.fields
    assert "totals" in contract[("outbound", "bank", "recon.result")].fields
    assert contract[("outbound", "boss", "recon.result")] == contract[("outbound", "bank", "recon.result")]
    # "as from a bank, **scope** `CREDITS`": the bank's recon.file, scope required.
    boss_file = contract[("inbound", "boss", "recon.file")]
    assert boss_file.fields == contract[("inbound", "bank", "recon.file")].fields
    assert "scope" in boss_file.required and "scope" in contract[("inbound", "bank", "recon.file")].required
    assert contract[("outbound", "boss", "message.rejected")].required == {"message_id", "type", "reason_code",
                                                                             "errors"}  # fmt: skip


def test_the_checks_find_a_message_or_field_the_document_lacks(
    contract: dict[Key, Row], document: dict[str, Any]
) -> None:
    spoilt = copy.deepcopy(document)
    del spoilt["channels"]["inbound"]["messages"]["inbound.boss.recharge.request"]
    payload = _resolve(spoilt, documented_messages(spoilt)[("inbound", "bank", "debit.result")]["payload"])
    del payload["properties"]["bank_txn_no"]
    payload["required"].remove("amount")

    assert missing_messages(contract, spoilt) == [("inbound", "boss", "recharge.request")]
    assert missing_fields(contract, spoilt, required=False) == ["inbound.bank.debit.result: bank_txn_no"]
    assert missing_fields(contract, spoilt, required=True) == ["inbound.bank.debit.result: amount"]


def test_the_body_parser_reads_bold_alternatives_and_conditions() -> None:
    row = parse_body(
        "**request_id** or **session_id**, **status** (`A`/`B`), agreement_id and agreement_version "
        "(when `ACTIVE`), and when `OK` the terms: **user_type** (`X`), **auto_pay_allowed**"
    )
    assert row.fields == {
        "request_id", "session_id", "status", "agreement_id", "agreement_version", "user_type",
        "auto_pay_allowed",
    }  # fmt: skip
    assert row.required == {"status"}


@pytest.mark.parametrize(
    ("cell", "fields", "want"),
    [
        ("**scope** (`DAILY`/`MONTHLY`, or `DEBITS` for flow 4), **record_count**", {"scope", "record_count"},
         {"scope", "record_count"}),
        ("reason (when `REJECTED`), totals (`DEBITS`/`CREDITS` files, 1.1)", {"reason", "totals"}, set()),
        ("amount and bill_id (when `MONTHLY_BILL`; amount optional otherwise), agreement_id",
         {"amount", "bill_id", "agreement_id"}, set()),
        ("**status** (`COMPLETED`/`FAILED`), reason_code (when not `COMPLETED`)", {"status", "reason_code"},
         {"status"}),
    ],
)  # fmt: skip
def test_the_body_parser_reads_the_cells_of_version_1_1(cell: str, fields: set[str], want: set[str]) -> None:
    row = parse_body(cell)
    assert (row.fields, row.required) == (fields, want)


def test_every_contract_message_appears_in_the_asyncapi_document(
    contract: dict[Key, Row], document: dict[str, Any]
) -> None:
    missing = missing_messages(contract, document)
    assert not missing, f"messages of CONTRACT.md not in the AsyncAPI document: {missing}"


def test_every_field_the_contract_names_is_in_the_message_payload(
    contract: dict[Key, Row], document: dict[str, Any]
) -> None:
    missing = missing_fields(contract, document, required=False)
    assert not missing, f"fields of CONTRACT.md missing from payload schemas: {missing}"


def test_every_unconditionally_required_field_is_required_in_the_payload(
    contract: dict[Key, Row], document: dict[str, Any]
) -> None:
    optional = missing_fields(contract, document, required=True)
    assert not optional, f"required fields of CONTRACT.md not required in payload schemas: {optional}"


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(document):
        assert _resolve(document, {"$ref": ref}) is not None, ref


def test_operations_are_receive_on_inbound_and_send_on_outbound(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        expected = "receive" if channel == "inbound" else "send"
        assert operation["action"] == expected, name
        for ref in operation["messages"]:
            # AsyncAPI 3: an operation's messages must be messages of its own channel.
            assert ref["$ref"].startswith(f"#/channels/{channel}/messages/"), name


def test_the_documented_choices_are_listed_as_notes(document: dict[str, Any]) -> None:
    notes = " ".join(document["x-signhub-notes"])
    for phrase in ("x-schema-version", 'message_id` ""', "UNAUTHORIZED_SENDER", "REQUEST_MISMATCH", "masked"):
        assert phrase in notes


def test_every_name_in_the_document_starts_with_the_configured_prefix() -> None:
    document = build_document("t1")
    addresses = [channel["address"] for channel in document["channels"].values()]
    assert addresses and all(address.startswith("t1.") for address in addresses)
    assert "signhub." not in json.dumps(document["channels"])


def test_dump_returns_the_document_as_indented_json_text() -> None:
    text = dump("t1")
    assert json.loads(text) == build_document("t1")
    assert text.startswith('{\n  "asyncapi": "3.0.0"')


def test_the_repo_copy_of_the_contract_equals_the_shared_contract() -> None:
    if not SHARED_CONTRACT.exists():
        # CI always has shared/ beside its clone: there a missing copy is a failure, not a skip.
        assert os.environ.get("CI") != "true", f"CI has no shared contract at {SHARED_CONTRACT}"
        pytest.skip(f"no shared contract beside the repo at {SHARED_CONTRACT} to compare with")
    assert CONTRACT.read_bytes() == SHARED_CONTRACT.read_bytes()
