"""What housekeeping reads and writes: pruning old inbox records and sent outbox rows, and the
stored tokens a key rotation re-encrypts. Written once for both dialects (`?` placeholders); the
writes run in a unit of work on `Db.offloaded()` (on SQLite the store's thread: they may scan),
the reads through the store's `query`."""

from __future__ import annotations

from hub.store.dbapi import Db, Query

# What may be pruned (older than the retention): the idempotency records and the outbox rows sent.
PRUNABLE = ("inbox", "outbox")
_PRUNE = {
    "inbox": "DELETE FROM inbox WHERE (sender, message_id) IN"
             " (SELECT sender, message_id FROM inbox WHERE received_at < ? LIMIT ?)",
    "outbox": "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL AND created_at < ? LIMIT ?)",
}  # fmt: skip
# Every column that keeps a plain Fernet token ("table.column"), with its table's key. A flow's
# tokens sit inside its `data` (JSON): `flow_data` and `set_flow_data`.
_TOKEN_KEYS = {"agreements.account_enc": "agreement_id", "cases.original_enc": "case_id",
               "dead_messages.original_enc": "dead_id", "meta.value": "key"}  # fmt: skip
TOKEN_COLUMNS = tuple(_TOKEN_KEYS)


class HousekeepingReads:
    def __init__(self, query: Query) -> None:
        self._query = query

    async def tokens(self, column: str, after: str, limit: int) -> list[tuple[str, str]]:
        """(key, token) of the next `limit` rows past key `after`, by key, of a TOKEN_COLUMNS column."""
        key, (table, name) = _TOKEN_KEYS[column], column.split(".")
        rows = await self._query(f"SELECT {key} AS k, {name} AS v FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                                 (after, limit))  # fmt: skip
        return [(r["k"], r["v"]) for r in rows]

    async def flow_data(self, after: str, limit: int) -> list[tuple[str, str]]:
        """(flow_key, data) of the next `limit` flows past `after`, by key."""
        rows = await self._query("SELECT flow_key, data FROM flows WHERE flow_key > ? ORDER BY flow_key LIMIT ?",
                                 (after, limit))  # fmt: skip
        return [(r["flow_key"], r["data"]) for r in rows]


class HousekeepingRows:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def prune(self, table: str, before: str, limit: int) -> int:
        """Deletes up to `limit` rows of a PRUNABLE table older than `before`; returns how many went."""
        return await self._db.run(_PRUNE[table], (before, limit))

    async def set_token(self, column: str, key: str, token: str) -> None:
        table, name = column.split(".")
        await self._db.run(f"UPDATE {table} SET {name}=? WHERE {_TOKEN_KEYS[column]}=?", (token, key))

    async def set_flow_data(self, flow_key: str, data: str) -> None:
        await self._db.run("UPDATE flows SET data=? WHERE flow_key=?", (data, flow_key))
