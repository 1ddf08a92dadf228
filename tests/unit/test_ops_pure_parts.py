"""The console's pure parts: roles, the audit chain's verification, the contract page, and the
metrics taken from the relay's rows."""

from __future__ import annotations

import json
from dataclasses import dataclass

from contracts.asyncapi import build_document
from hub import metrics
from hub.console.audit import GENESIS, row_hash, verify_rows
from hub.console.auth import Role
from hub.console.contract_page import render_contract


def _chain(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        row: dict[str, object] = {"seq": seq, "at": f"2026-03-0{seq}", "actor": "alice", "action": "case.claim",
                                  "target": f"C{seq}", "reason": None, "before": None, "after": '{"x": 1}'}  # fmt: skip
        row |= {"prev_hash": prev, "hash": row_hash(prev, row)}
        rows.append(row)
        prev = str(row["hash"])
    return rows


def test_each_role_may_do_what_the_roles_before_it_may() -> None:
    assert Role.ADMIN.allows(Role.APPROVER) and Role.APPROVER.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.APPROVER)


def test_an_untouched_chain_verifies() -> None:
    verdict = verify_rows(_chain(5))
    assert verdict.ok and verdict.rows == 5


def test_a_changed_removed_or_reordered_row_breaks_the_chain_where_it_happened() -> None:
    changed = _chain(5)
    changed[2]["reason"] = "edited later"
    assert verify_rows(changed).first_bad_seq == 3
    removed = _chain(5)
    del removed[1]
    assert not verify_rows(removed).ok and verify_rows(removed).first_bad_seq == 3
    rehashed = _chain(5)  # a forger who recomputes one row's hash still breaks the next link
    rehashed[1]["actor"] = "mallory"
    rehashed[1]["hash"] = row_hash(str(rehashed[1]["prev_hash"]), rehashed[1])
    assert verify_rows(rehashed).first_bad_seq == 3


def test_the_contract_page_lists_every_message_with_its_fields_and_escapes_text() -> None:
    doc = build_document("signhub")
    page = render_contract(doc)
    for key in doc["components"]["messages"]:
        assert f'id="msg-{key}"' in page
    assert "<code>account_no</code> <b>*</b>" in page and "<li>" in page
    doc["info"]["description"] = "<script>alert(1)</script>"
    assert "<script>alert" not in render_contract(doc)


@dataclass
class _Row:
    target: str
    routing_key: str
    type: str
    body: bytes


def _sample(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_relays_published_rows_count_by_type_party_and_outcome() -> None:
    labels = {"type": "sign.result", "status": "REJECTED", "reason": "UNIT_TEST_REASON"}
    before = _sample("signhub_flow_outcomes_total", labels)
    sent = _sample("signhub_messages_out_total", {"type": "sign.result", "party": "bank.ICBC"})
    body = json.dumps({"status": "REJECTED", "reason_code": "UNIT_TEST_REASON"}).encode()
    rows = [_Row("party", "bank.ICBC.sign.result", "sign.result", body),
            _Row("party", "bank.ICBC.sign.result", "sign.result", body)]  # fmt: skip
    metrics.published(rows, [None, RuntimeError("returned")])
    assert _sample("signhub_flow_outcomes_total", labels) == before + 1
    assert _sample("signhub_messages_out_total", {"type": "sign.result", "party": "bank.ICBC"}) == sent + 1
