"""Reconciliation at the scale of a large bank (a benchmark, not a test).

    python -m bench.recon --rows 10000000 --workdir /tmp/recon-bench

Generates a hub store of `--rows` agreements at bank ICBC (half Guangdong, half Beijing), the
bank's MONTHLY file of the same size with about 1% of each discrepancy class, and Guangdong's
MONTHLY file with about 1% of each of its classes. Then runs a real hub on the broker and times
the whole bank-against-hub reconciliation (`recon.file` in -> corrections committed ->
`recon.result` out) and the province side (`recon.file` -> `recon.errors`), with the hub's
phase timings, peak RSS and rows/s, while a scripted bank and CRM keep signing and the latency
of each signing (`sign.request` -> `sign.response`) is measured. Last, in a separate process,
the reference: DuckDB's full outer join of the same two data sets exported as plain CSV; the
hub's corrections must be the very rows (key and class) the reference found, or it exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import duckdb

from bench.provenance import measured_line
from hub.bootstrap import build_hub
from hub.flows.reconciliation import SHANGHAI
from hub.messaging.topology import delete_topology
from hub.settings import load_settings
from hub.store.recon_export import export_agreements
from hub.store.sqlite import SqliteStore

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SIGNED_AT = "2026-10-15T02:00:00.000000+00:00"


def rss_mb() -> float:
    """Peak RSS of this process (the hub runs in it) and of its children so far (the join's process)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def log(text: str) -> None:
    print(text, flush=True)


# --- data ---------------------------------------------------------------------------------------


def generate_store(db: Path, rows: int) -> None:
    """`rows` agreements at ICBC; even i in Guangdong (138...), odd in Beijing (139...); 5% CANCELLED."""
    asyncio.run(_migrate(db))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute(f"""
        WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {rows - 1})
        INSERT INTO agreements (agreement_id, version, status, phone, province, bank, bank_agreement_no, account_fp,
            account_last4, account_enc, account_type, user_type, recharge_threshold, recharge_amount, auto_pay,
            channel, signed_at, updated_at, flow_key, auto_pay_allowed)
        SELECT printf('A%010d', i), 1, CASE WHEN i % 20 = 19 THEN 'CANCELLED' ELSE 'ACTIVE' END,
               CASE WHEN i % 2 = 0 THEN printf('138%08d', i / 2) ELSE printf('139%08d', i / 2) END,
               CASE WHEN i % 2 = 0 THEN 'GD' ELSE 'BJ' END, 'ICBC', printf('B%010d', i), '', '3445', '',
               'DEBIT', 'PREPAID', 1000, 5000, 0, 'ONLINE', '{SIGNED_AT}', '{SIGNED_AT}', NULL, 0
        FROM c""")  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


async def _migrate(db: Path) -> None:
    store = await SqliteStore.open(db)
    await store.close()


def _copy_lines(con: duckdb.DuckDBPyConnection, query: str, out: Path) -> None:
    con.execute(f"COPY ({query}) TO '{out}' (HEADER false, QUOTE '', DELIMITER '\\0')")


def generate_files(work: Path, rows: int, day: date) -> dict[str, Path]:
    """Plain CSVs (for the reference) and the recon files built from them (H + records + T)."""
    con = duckdb.connect()
    con.execute("SET memory_limit='512MB'; SET preserve_insertion_order=false; SET enable_progress_bar=false")
    stamp = "2026-10-15T10:00:00+08:00"
    bank = f"""
        SELECT printf('B%010d', i) || '|' || CASE WHEN i % 2 = 0 THEN printf('138%08d', i // 2)
               ELSE printf('139%08d', i // 2) END || '|3445|' ||
               CASE WHEN i % 20 = 19 OR i % 100 = 2 THEN 'CANCELLED' ELSE 'ACTIVE' END || '|PREPAID|1000|' ||
               CASE WHEN i % 100 = 3 THEN '6000' ELSE '5000' END || '|N|{stamp}|{stamp}' AS line
        FROM range({rows}) t(i) WHERE i % 100 <> 1
        UNION ALL
        SELECT printf('N%010d', j) || '|' || printf('138%08d', {rows} // 2 + 1 + j) || '|3445|ACTIVE|PREPAID|1000|5000|N|'
               || '{stamp}|{stamp}' FROM range({rows} // 100) t(j)"""  # fmt: skip
    crm = f"""
        SELECT printf('A%010d', i) || '|' || printf('138%08d', i // 2) || '|ICBC|' ||
               CASE WHEN i % 20 = 19 OR i % 100 = 12 THEN 'CANCELLED' ELSE 'ACTIVE' END || '|PREPAID|1000|' ||
               CASE WHEN i % 100 = 14 THEN '7000' ELSE '5000' END || '|N|{stamp}' AS line
        FROM range(0, {rows}, 2) t(i) WHERE i % 100 <> 10
        UNION ALL
        SELECT printf('P%010d', j) || '|' || printf('138%08d', {rows} + j) || '|ICBC|ACTIVE|PREPAID|1000|5000|N|{stamp}'
        FROM range({rows} // 200) t(j)"""  # fmt: skip
    out: dict[str, Path] = {}
    for name, query, sender in (("bank", bank, "bank.ICBC"), ("crm", crm, "crm.GD")):
        plain, records = work / f"{name}.csv", work / f"{name}.records"
        _copy_lines(con, query, plain)
        _copy_lines(con, f"SELECT 'D|' || line FROM read_csv('{plain}', columns={{'line': 'VARCHAR'}}, header=false,"
                         " delim='\\0', quote='', escape='')", records)  # fmt: skip
        count = int(con.execute(f"SELECT count(*) FROM read_csv('{plain}', columns={{'l': 'VARCHAR'}}, header=false,"
                                " delim='\\0', quote='', escape='')").fetchone()[0])  # type: ignore[index]  # fmt: skip
        target = work / "files" / "inbound" / sender / f"{name}-{day:%Y%m%d}-MONTHLY.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            f.write(f"H|{sender}|{day:%Y%m%d}|MONTHLY|{count}\n".encode())
            with records.open("rb") as src:
                shutil.copyfileobj(src, f, 16 << 20)
            f.write(f"T|{count}\n".encode())
        records.unlink()
        out[name], out[f"{name}_count"] = target, Path(str(count))
        out[f"{name}_plain"] = plain
    con.close()
    return out


# --- signing latency ----------------------------------------------------------------------------


class Signer:
    """A scripted bank and CRM on plain aio-pika: one signing at a time, latency of each answer."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.samples: list[tuple[float, float]] = []  # (sent at, seconds to sign.response)
        self.received: dict[str, dict[str, Any]] = {}  # correlation id -> recon answers
        self._sent: dict[str, float] = {}
        self._n = 0

    async def start(self) -> None:
        self.conn = await aio_pika.connect_robust(AMQP)
        self.ch = await self.conn.channel(publisher_confirms=True)
        self.ex = await self.ch.get_exchange(f"{self.prefix}.inbound")
        consume = await self.conn.channel()
        for party in ("bank.ICBC", "crm.GD"):
            queue = await consume.get_queue(f"{self.prefix}.party.{party}", ensure=True)
            await queue.consume(self._on_message, no_ack=True)

    async def publish(self, key: str, body: dict[str, Any], correlation_id: str | None = None) -> str:
        mid = uuid.uuid4().hex
        await self.ex.publish(aio_pika.Message(json.dumps(body).encode(), message_id=mid, type=key.split(".", 2)[2],
                                               content_type="application/json", correlation_id=correlation_id,
                                               headers={"x-schema-version": 1},
                                               delivery_mode=aio_pika.DeliveryMode.PERSISTENT), key)  # fmt: skip
        return mid

    async def _on_message(self, m: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            await self._take(m)
        except Exception as exc:  # a benchmark party must keep consuming
            log(f"signer failed on {m.type}: {exc!r}")

    async def _take(self, m: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = json.loads(m.body)
        if m.type == "verify.request":
            await self.publish("crm.GD.verify.response", {"verify_id": body["verify_id"], "result": "OK",
                               "user_type": "POSTPAID", "auto_pay_allowed": False}, m.message_id)  # fmt: skip
        elif m.type == "sign.response" and body["request_id"] in self._sent:
            sent = self._sent.pop(body["request_id"])
            self.samples.append((sent, time.perf_counter() - sent))
        elif m.type in ("recon.result", "recon.errors"):
            self.received[m.correlation_id or ""] = body

    async def sign_forever(self, every_s: float) -> None:
        while True:
            self._n += 1
            request_id = f"L{self._n:08d}{uuid.uuid4().hex[:6]}"
            phone = f"1385{self._n % 10_000_000:07d}"
            self._sent[request_id] = time.perf_counter()
            await self._publish_quietly("bank.ICBC.sign.request", {
                "request_id": request_id, "phone": phone, "account_no": "6222020200112233445",
                "account_type": "DEBIT", "holder_name": "张三", "id_type": "ID_CARD", "id_no": "11010519491231002X",
                "channel": "ONLINE"})  # fmt: skip
            await asyncio.sleep(every_s)

    async def _publish_quietly(self, key: str, body: dict[str, Any]) -> None:
        try:
            await self.publish(key, body)
        except Exception as exc:
            log(f"signer could not publish {key}: {exc!r}")

    def latency(self, since: float, until: float) -> str:
        values = sorted(s for t, s in self.samples if since <= t < until)
        if not values:
            return "no signing answered"
        p95 = values[int(0.95 * (len(values) - 1))]
        return (f"{len(values)} signings, p50 {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms,"
                f" max {values[-1] * 1000:.0f} ms")  # fmt: skip


async def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the hub")
        await asyncio.sleep(0.05)


# --- the run ------------------------------------------------------------------------------------


async def run_hub(work: Path, files: dict[str, Path], day: date, rows: int) -> dict[str, Any]:
    (work / "segments.csv").write_text("prefix,province\n138,GD\n139,BJ\n")
    settings = load_settings(prefix=f"rb{uuid.uuid4().hex[:8]}", store=str(work / "hub.db"), files=work / "files",
                             segments=work / "segments.csv", banks=["ICBC"], provinces=["GD", "BJ"],
                             http_port=0, log_level="WARNING")  # fmt: skip
    hub = await build_hub(settings, with_http=False)
    await hub.start()
    signer = Signer(settings.prefix)
    await signer.start()
    signing = asyncio.create_task(signer.sign_forever(0.05))
    report: dict[str, Any] = {}
    try:
        await asyncio.sleep(3)
        t0 = time.perf_counter()
        report["latency_before"] = signer.latency(0, t0)
        for kind, sender in (("bank", "bank.ICBC"), ("crm", "crm.GD")):
            path, count = files[kind], int(str(files[f"{kind}_count"]))
            body = {"file_name": path.name, "business_date": day.isoformat(), "scope": "MONTHLY",
                    "record_count": count, "sha256": _sha256(path)}  # fmt: skip
            started = time.perf_counter()
            mid = await signer.publish(f"{sender}.recon.file", body)
            await wait_for(lambda m=mid: m in signer.received, 3600)  # type: ignore[misc]
            ended = time.perf_counter()
            report[kind] = {"seconds": ended - started, "records": count, "answer": signer.received[mid],
                            "latency": signer.latency(started, ended), "rss_mb": rss_mb(),
                            "message_id": mid}  # fmt: skip
        assert hub.reconciler is not None
        report["phases"] = [(file_name, phase, seconds, signer.latency(ended - seconds, ended))
                            for file_name, phase, seconds, ended in hub.reconciler.phases]  # fmt: skip
        await asyncio.sleep(1)
        report["latency_after"] = signer.latency(time.perf_counter() - 1.5, time.perf_counter())
    finally:
        signing.cancel()
        await signer.conn.close()
        await hub.stop()
        await delete_topology(AMQP, hub.hub_names, hub.registry.parties(), len(settings.retry_delays_s))
    return report


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_BANK_COLS = (
    "k",
    "phone",
    "last4",
    "status",
    "user_type",
    "thr",
    "amt",
    "auto_pay",
    "signed_at",
    "changed_at",
)
_HUB_COLS = ("agreement_id", "bank", "bank_agreement_no", "phone", "province", "status", "version", "user_type",
             "thr", "amt", "auto_pay", "signed_at", "changed_at")  # fmt: skip
REFERENCE = """
import duckdb, sys, time, resource
bank, hub, bank_cols, hub_cols, found = sys.argv[1:6]
con = duckdb.connect()
con.execute("SET memory_limit='512MB'; SET enable_progress_bar=false")
def source(path, cols):
    typed = ", ".join(f"'{c}': 'VARCHAR'" for c in cols.split(","))
    return f"read_csv('{path}', delim='|', header=false, quote='', escape='', auto_detect=false, columns={{{typed}}})"
t = time.perf_counter()
con.execute(f"CREATE TABLE d AS SELECT * FROM {source(bank, bank_cols)} b FULL OUTER JOIN {source(hub, hub_cols)} h"
            " ON b.k = h.bank_agreement_no WHERE b.k IS NULL OR h.bank_agreement_no IS NULL OR b.status <> h.status"
            " OR b.amt <> h.amt")
seconds = time.perf_counter() - t
rows = con.execute("SELECT count(*) FROM d").fetchone()[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# Not timed: each differing row's key and class, to check against the hub's (DuckDB names the hub's
# columns that clash with the bank's <name>_1).
con.execute("COPY (SELECT coalesce(k, bank_agreement_no), CASE WHEN bank_agreement_no IS NULL THEN 'MISSING_AT_HUB'"
            " WHEN k IS NULL THEN 'MISSING_AT_BANK' WHEN status <> status_1 THEN 'STATUS_MISMATCH'"
            f" ELSE 'TERMS_MISMATCH' END FROM d) TO '{found}' (HEADER false, DELIMITER '|')")
print(f"{seconds:.2f} {rows} {peak:.0f}")
"""


def export_hub(work: Path) -> Path:
    """The hub's side of the reference, as plain CSV, taken before the hub corrects itself."""
    hub_csv = work / "hub.csv"
    export_agreements(str(work / "hub.db"), "bank", "ICBC", "9999", hub_csv)
    return hub_csv


def reference(files: dict[str, Path], hub_csv: Path, found: Path) -> tuple[float, int, float]:
    """The same two data sets as plain CSV (the bank's records; the hub's export), joined by DuckDB;
    `found` gets each differing row's key and class."""
    out = subprocess.run([sys.executable, "-c", REFERENCE, str(files["bank_plain"]), str(hub_csv), ",".join(_BANK_COLS),
                          ",".join(_HUB_COLS), str(found)],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1]), float(out[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=10_000_000, help="agreements in the hub and the bank's file"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/signhub-recon-bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log(measured_line())
    day = (datetime.now(SHANGHAI) - timedelta(days=1)).date()
    t = time.perf_counter()
    generate_store(work / "hub.db", args.rows)
    log(f"generated a hub store of {args.rows:,} agreements in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    files = generate_files(work, args.rows, day)
    log(f"generated the bank's file ({int(str(files['bank_count'])):,} records, {files['bank'].stat().st_size >> 20} MiB)"
        f" and Guangdong's ({int(str(files['crm_count'])):,} records) in {time.perf_counter() - t:.1f} s")  # fmt: skip
    hub_csv = export_hub(work)
    report = asyncio.run(run_hub(work, files, day, args.rows))
    _print(report)
    ref_s, ref_rows, ref_rss = reference(files, hub_csv, work / "reference-rows.csv")
    bank_s = report["bank"]["seconds"]
    log(f"reference: DuckDB full outer join of the two plain CSVs: {ref_s:.2f} s ({ref_rows:,} differing rows,"
        f" peak RSS {ref_rss:.0f} MiB)")  # fmt: skip
    log(f"ratio: bank-against-hub reconciliation / reference join = {bank_s / ref_s:.1f}x (target 5x)")
    hub_rows = hub_found(work / "hub.db", report["bank"]["message_id"])
    return 0 if same_rows(hub_rows, reference_found(work / "reference-rows.csv")) else 1


def hub_found(db: Path, message_id: str) -> list[tuple[str, str]]:
    """The hub's rows: each correction it made for the bank's file (a timeline event of the file's
    message), as the agreement's bank number and the discrepancy class."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(conn.execute(
            "SELECT a.bank_agreement_no, json_extract(e.detail, '$.discrepancy') FROM events e JOIN agreements a"
            " ON a.agreement_id = e.agreement_id WHERE e.event = 'agreement.reconciled' AND e.message_id = ?",
            (message_id,)))  # fmt: skip
    finally:
        conn.close()


def reference_found(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as f:
        return sorted((key, kind) for key, kind in (line.rstrip("\n").split("|") for line in f))


def same_rows(hub: list[tuple[str, str]], ref: list[tuple[str, str]]) -> bool:
    """Prints whether the hub corrected the very rows the reference found, each with its class."""
    if hub == ref:
        log(f"same rows: the hub corrected the {len(hub):,} rows the reference found, each in the same class")
        return True
    only_hub, only_ref = Counter(hub) - Counter(ref), Counter(ref) - Counter(hub)
    log(f"!! the rows differ: hub {len(hub):,}, reference {len(ref):,}; only the hub's "
        f"({only_hub.total():,}), e.g. {sorted(only_hub.elements())[:5]}; only the reference's "
        f"({only_ref.total():,}), e.g. {sorted(only_ref.elements())[:5]}")  # fmt: skip
    return False


def _print(report: dict[str, Any]) -> None:
    log(f"signing latency before: {report['latency_before']}")
    for kind, what in (("bank", "bank against hub (file in -> corrections committed -> recon.result out)"),
                       ("crm", "province side (file in -> error-handling file -> recon.errors out)")):  # fmt: skip
        r = report[kind]
        log(f"{what}: {r['seconds']:.1f} s, {r['records'] / r['seconds']:,.0f} rows/s, peak RSS so far"
            f" {r['rss_mb']:.0f} MiB (hub process and the join's process)")  # fmt: skip
        log(f"  answer: {json.dumps(r['answer'])}")
        log(f"  signing latency meanwhile: {r['latency']}")
    for file_name, phase, seconds, latency in report["phases"]:
        log(f"  phase {file_name}: {phase}: {seconds:.2f} s; signing meanwhile: {latency}")
    log(f"signing latency after: {report['latency_after']}")


if __name__ == "__main__":
    raise SystemExit(main())
