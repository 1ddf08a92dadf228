"""What the operations console reads and writes in one unit of work: operators and their sessions,
case claims, four-eyes approvals and the audit log (written against `hub.store.dbapi.Db`, so
SQLite and PostgreSQL both serve)."""

from __future__ import annotations

from typing import Any

from hub.store.dbapi import Db


def _dict(row: Any) -> dict[str, Any] | None:
    return None if row is None else dict(row)


class OpsRows:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def operator(self, name: str) -> dict[str, Any] | None:
        return _dict(await self._db.one("SELECT * FROM operators WHERE name=?", (name,)))

    async def add_operator(self, row: dict[str, Any]) -> None:
        """Raises UniqueViolation when the name is taken."""
        await self._db.run(
            "INSERT INTO operators (name, role, password_hash, created_at, created_by)"
            " VALUES (:name, :role, :password_hash, :created_at, :created_by)",
            row,
        )

    async def add_session(self, token_hash: str, operator: str, created_at: str, expires_at: str) -> None:
        await self._db.run("DELETE FROM operator_sessions WHERE expires_at<?", (created_at,))
        await self._db.run(
            "INSERT INTO operator_sessions (token_hash, operator, created_at, expires_at) VALUES (?,?,?,?)",
            (token_hash, operator, created_at, expires_at),
        )

    async def drop_session(self, token_hash: str) -> None:
        await self._db.run("DELETE FROM operator_sessions WHERE token_hash=?", (token_hash,))

    async def claim(self, case_id: str) -> dict[str, Any] | None:
        return _dict(await self._db.one("SELECT * FROM case_claims WHERE case_id=?" + self._db.for_update,
                                        (case_id,)))  # fmt: skip

    async def set_claim(self, case_id: str, operator: str | None, at: str) -> None:
        await self._db.run("DELETE FROM case_claims WHERE case_id=?", (case_id,))
        if operator is not None:
            await self._db.run("INSERT INTO case_claims (case_id, operator, claimed_at) VALUES (?,?,?)",
                               (case_id, operator, at))  # fmt: skip

    async def approval(self, approval_id: str) -> dict[str, Any] | None:
        sql = "SELECT * FROM approvals WHERE approval_id=?" + self._db.for_update
        return _dict(await self._db.one(sql, (approval_id,)))

    async def pending(self, kind: str, target_id: str) -> dict[str, Any] | None:
        sql = "SELECT * FROM approvals WHERE kind=? AND target_id=? AND state='PENDING'"
        return _dict(await self._db.one(sql, (kind, target_id)))

    async def add_approval(self, row: dict[str, Any]) -> None:
        """Raises UniqueViolation when the target already has a pending approval."""
        cols = ", ".join(row)
        await self._db.run(f"INSERT INTO approvals ({cols}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))  # fmt: skip

    async def decide(self, approval_id: str, state: str, by: str, at: str) -> bool:
        """Closes a PENDING approval; False when another operator decided it first."""
        changed = await self._db.run(
            "UPDATE approvals SET state=?, decided_by=?, decided_at=? WHERE approval_id=? AND state='PENDING'",
            (state, by, at, approval_id),
        )
        return changed == 1

    async def fail_approval(self, approval_id: str) -> None:
        """An approved proposal that could not be carried out."""
        await self._db.run("UPDATE approvals SET state='FAILED' WHERE approval_id=?", (approval_id,))

    async def audit_tail(self) -> tuple[int, str] | None:
        row = await self._db.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if row is None else (int(row["seq"]), str(row["hash"]))

    async def add_audit(self, row: dict[str, Any]) -> None:
        """Raises UniqueViolation when another writer took the same place in the chain."""
        cols = ", ".join(row)
        await self._db.run(f"INSERT INTO audit_log ({cols}) VALUES ({', '.join('?' * len(row))})",
                           tuple(row.values()))  # fmt: skip
