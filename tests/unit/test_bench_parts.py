"""The benchmark's own arithmetic and wiring (bench/): percentiles, the raw relay's hops, the flow
numbering the parties rely on, and the profile summary. No broker needed."""

from __future__ import annotations

import math
import os

from bench import proc, profiling, relay, wire
from bench.drive import missing_by_step
from bench.parties import Timeline
from bench.stats import percentile, steady_rate, summary_ms


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
