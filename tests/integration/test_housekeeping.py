"""Housekeeping on SQLite and PostgreSQL: pruning keeps the idempotency window, re-encryption moves
every stored token to the newest key without changing what it says."""

from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import Fernet

from hub.agreements import Account, Case
from hub.protection import DataProtector
from hub.services.housekeeping import prune, reencrypt
from hub.store.unit_of_work import DeadRecord, OutboxRow, Store
from tests.support.data import CARD, ID_NO
from tests.support.outbox import unsent_ids
from tests.support.records import NOW, agreement, signing_flow

OLD, NEW = Fernet.generate_key(), Fernet.generate_key()


def _row(message_id: str) -> OutboxRow:
    return OutboxRow(message_id=message_id, target="party", routing_key="bank.ICBC.sign.response",
                     type="sign.response", correlation_id=None, body=b"{}")  # fmt: skip


async def test_pruning_removes_only_what_is_older_than_the_retention(store: Store) -> None:
    long_ago, lately = NOW - timedelta(days=40), NOW - timedelta(days=2)
    async with store.unit_of_work() as uow:
        await uow.remember("bank.ICBC", "old", "sign.request", long_ago)
        await uow.remember("bank.ICBC", "recent", "sign.request", lately)
        await uow.add_outbox([_row("old-sent"), _row("old-unsent")], long_ago)
        await uow.add_outbox([_row("recent-sent")], lately)
    ids = await unsent_ids(store)
    await store.mark_sent([ids["old-sent"], ids["recent-sent"]], NOW)  # type: ignore[list-item]

    removed = await prune(store, NOW, timedelta(days=30))

    assert removed == 2
    inbox = await store.query("SELECT message_id FROM inbox ORDER BY message_id")
    outbox = await store.query("SELECT message_id FROM outbox ORDER BY message_id")
    assert [r["message_id"] for r in inbox] == ["recent"]
    assert [r["message_id"] for r in outbox] == ["old-unsent", "recent-sent"], "unsent rows are never pruned"


async def test_reencryption_moves_every_token_to_the_newest_key(store: Store) -> None:
    before = DataProtector([OLD])
    account = Account("fp", CARD[-4:], before.encrypt(CARD), agreement().account.account_type)
    async with store.unit_of_work() as uow:
        await uow.insert_agreement(agreement(account=account))
        await uow.save_flow(signing_flow(account=account, id_encrypted=before.encrypt(ID_NO)), NOW)
        case = Case("C1", "13800138000", "A1", "A0", "ICBC|R1", "m1", "bank.ICBC", NOW)
        await uow.open_case(case, before.encrypt(b'{"account_no": "x"}'))
        await uow.record_dead(DeadRecord("D1", "bank.ICBC", "m2", "bank.ICBC.sign.request", "sign.request",
                                         "INVALID_MESSAGE", "bad", {}, before.encrypt(b"raw"), NOW))  # fmt: skip
    rotating = DataProtector([NEW, OLD])

    moved = await reencrypt(store, rotating)  # an agreement, a case, a dead message, a flow

    assert moved == 4 and await reencrypt(store, rotating) == 0, "a second pass finds nothing left"
    only_new = DataProtector([NEW])
    a = (await store.query("SELECT account_enc FROM agreements"))[0]["account_enc"]
    assert only_new.decrypt(a) == CARD.encode()
    for table in ("cases", "dead_messages"):
        token = (await store.query(f"SELECT original_enc FROM {table}"))[0]["original_enc"]
        assert only_new.is_current(token)
    async with store.unit_of_work() as uow:
        flow = await uow.flow("ICBC", "R1")
    assert flow is not None and flow.id_encrypted is not None
    assert only_new.decrypt(flow.id_encrypted) == ID_NO.encode()
    assert only_new.decrypt(flow.account.encrypted) == CARD.encode()
