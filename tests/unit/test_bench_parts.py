"""The benchmark's own arithmetic and wiring (bench/): percentiles, the raw relay's hops, the flow
numbering the parties rely on, the profile summary, and the fuzzer's labels and judge. No broker
needed."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any

from bench import proc, profiling, relay, wire
from bench.drive import missing_by_step
from bench.fuzz_expect import Expect, Made, label
from bench.fuzz_judge import DEAD, Seen, judge
from bench.parties import Timeline
from bench.stats import percentile, steady_rate, summary_ms
from contracts.routing import PartyKind


def test_percentiles_are_nearest_rank_and_ignore_missing_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    s = summary_ms([0.001, 0.002, math.nan, 0.004])
    assert (s["p50"], s["max"], s["n"]) == (2.0, 4.0, 3.0)
    assert math.isnan(summary_ms([])["p99"])


def test_the_steady_rate_leaves_out_ramp_up_and_drain() -> None:
    done = [float(i) for i in range(100)]  # one flow a second
    assert steady_rate(done) == 1.0


def test_every_message_of_a_flow_leads_back_to_its_flow() -> None:
    for i in (0, 1, 2, 3, 99_999):
        assert wire.flow_of_phone(wire.phone_of(i)) == i
        assert wire.flow_of_request_id(wire.request_id_of("ab12", i)) == i
        assert len(wire.phone_of(i)) == 11
    assert {wire.province_of(wire.phone_of(i)) for i in range(4)} == set(wire.PROVINCES)
    assert {wire.bank_of(i) for i in range(4)} == set(wire.BANKS)


def test_the_raw_relay_sends_what_the_hub_would_send_at_each_hop() -> None:
    request = wire.sign_request("r1", 6)
    [(key, msg_type, ask)] = relay.next_hops("bank.ICBC.sign.request", request)
    assert (key, msg_type, ask["phone"]) == ("crm.GD.verify.request", "verify.request", request["phone"])
    [(key, msg_type, answer)] = relay.next_hops("crm.GD.verify.response", wire.verify_ok(ask["verify_id"]))
    assert (key, answer["request_id"], answer["result"]) == (
        "bank.ICBC.sign.response",
        request["request_id"],
        "APPROVED",
    )
    confirmed = wire.sign_confirmed(request["request_id"], request["phone"])
    result, notify = relay.next_hops("bank.ICBC.sign.confirmed", confirmed)
    assert (result[0], result[2]["status"]) == ("bank.ICBC.sign.result", "ACTIVE")
    assert (notify[0], notify[2]["phone"]) == ("crm.GD.sign.notify", request["phone"])
    assert relay.next_hops("crm.GD.sign.synced", wire.sign_synced("A1")) == []


def test_flows_not_finished_are_counted_by_the_message_they_wait_for() -> None:
    timeline = Timeline(3)
    for stamp in (
        "req_pub",
        "vreq_rcv",
        "vresp_pub",
        "sresp_rcv",
        "conf_pub",
        "result_rcv",
        "notify_rcv",
        "done",
    ):
        timeline.mark(stamp, 0)
    timeline.mark("req_pub", 1)
    timeline.mark("vreq_rcv", 2)
    assert missing_by_step(timeline, 3) == {"verify.request at the CRM": 1, "sign.response at the bank": 1}
    assert not timeline.mark("done", 0)  # a repeat keeps the first stamp


def test_the_profile_summary_tells_waiting_from_working_per_thread() -> None:
    folded = (
        "thread (1): MainThread;run (asyncio/base_events.py:10);take (hub/messaging/intake.py:60) 30\n"
        "thread (1): MainThread;run (asyncio/base_events.py:10);select (x);EpollSelector.select (selectors.py:468) 50\n"
        "thread (2): Thread-1;_connection_worker_thread (/x/site-packages/aiosqlite/core.py:59) 60\n"
        "thread (2): Thread-1;_connection_worker_thread (/x/site-packages/aiosqlite/core.py:63) 40\n"
    )
    p = profiling.parse(folded)
    assert p.threads == {"MainThread": 80, "Thread-1": 100}
    assert p.main_working == 30
    assert p.own["take (hub/messaging/intake.py)"] == 30
    assert p.leaf_lines[("Thread-1", "_connection_worker_thread (aiosqlite/core.py:63)")] == 40
    text = profiling.summary(folded, seconds=1.0, rate=100)
    assert "60.0%  _connection_worker_thread (aiosqlite/core.py:59)  (waiting)" in text


def test_this_process_cpu_and_memory_can_be_read_from_proc() -> None:
    assert proc.cpu_seconds(os.getpid()) > 0
    rss = proc.status_kb(os.getpid(), "VmRSS")  # read first: the peak read after it cannot be lower
    assert proc.status_kb(os.getpid(), "VmHWM") >= rss > 0
    busy, total = proc.machine_cpu()
    assert 0 < busy <= total


def _made(msg_type: str = "unsign.request", **changes: Any) -> Made:
    made = Made(PartyKind.BANK, msg_type, "bank.ICBC", None, True, {"request_id": "R1"})
    return replace(made, **changes)


def test_a_fuzz_label_names_the_first_defect_in_the_order_the_hub_documents() -> None:
    assert label(_made(sender=None, body=None), True) == Expect(False, "UNKNOWN_SENDER")
    assert label(_made(type_refusal="UNAUTHORIZED_SENDER", body=None), False).reason == "UNAUTHORIZED_SENDER"
    assert label(_made("debit.result", envelope_ok=False), True).reason == "INVALID_MESSAGE"
    assert label(_made("debit.result"), True) == Expect(False, "NOT_SUPPORTED", "bank.ICBC")
    assert label(_made(), False).reason == "INVALID_MESSAGE"  # the message_id
    assert label(_made(), True) == Expect(True, None, "bank.ICBC", ("unsign.result",))
    assert label(_made("sign.failed"), True).answers == ()


def _refused(reason: str = "INVALID_MESSAGE", to: str | None = "bank.ICBC") -> tuple[str, Expect]:
    return "fz-0", Expect(False, reason, to)


def _told(queue: str, code: str, message_id: str = "M1") -> Seen:
    return Seen(queue, "message.rejected", message_id, "fz-0", names="fz-0", reason_code=code)


def test_the_fuzz_judge_finds_a_refusal_told_to_another_party_with_another_reason_or_twice() -> None:
    dead = Seen(DEAD, "unsign.request", "fz-0", reason="INVALID_MESSAGE")
    assert judge([_refused()], [dead, _told("bank.ICBC", "INVALID_MESSAGE")]).problems() == []
    assert judge([_refused()], [dead, _told("bank.ICBC", "INVALID_MESSAGE")] * 2).mismatches == 1  # 2 dead
    for told in (_told("crm.GD", "INVALID_MESSAGE"), _told("bank.ICBC", "UNKNOWN_TYPE")):
        assert judge([_refused()], [dead, told]).mismatches == 1
    second = [_told("bank.ICBC", "INVALID_MESSAGE"), _told("bank.ICBC", "INVALID_MESSAGE", "M2")]
    assert judge([_refused()], [dead, *second]).mismatches == 1
    unknown, nobody = Seen(DEAD, "x", "fz-0", reason="UNKNOWN_SENDER"), _refused("UNKNOWN_SENDER", None)
    assert judge([nobody], [unknown]).problems() == []
    assert judge([nobody], [unknown, _told("bank.ICBC", "UNKNOWN_SENDER")]).mismatches == 1


def test_the_fuzz_judge_wants_an_answer_shared_by_repeats_unless_a_sign_failed_closed_the_flow() -> None:
    request = Expect(True, None, "bank.ICBC", ("sign.response",), shared="R1", flow="bank.ICBC R1")
    answer = Seen("bank.ICBC", "sign.response", "M1", "fz-0")
    assert judge([("fz-0", request), ("fz-1", request)], [answer]).problems() == []
    assert judge([("fz-0", request), ("fz-1", request)], []).mismatches == 2
    closer = Expect(True, None, None, (), closes="bank.ICBC R1")
    assert judge([("fz-0", request), ("fz-1", closer)], []).problems() == []
    assert judge([("fz-1", closer)], [Seen("bank.ICBC", "sign.result", "M1", "fz-1")]).mismatches == 1
    misrouted = Seen("bank.CCB", "sign.response", "M1", "fz-0")
    assert judge([("fz-0", request)], [answer, misrouted]).mismatches == 1
