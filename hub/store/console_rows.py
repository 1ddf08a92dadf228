"""What the operations console reads outside a unit of work: operators and their sessions,
proposals waiting for a second operator, dead letters, manual cases with their claims, the audit
log and the levels `/metrics` shows. Written once for both dialects against the store's `query`
(`?` placeholders; PostgreSQL's adapter numbers them). Its writes are in `hub.store.ops_rows`."""

from __future__ import annotations

from typing import Any

from hub.store.dbapi import Query

_CASES = (
    "SELECT c.case_id, c.phone, c.state, c.opened_at, c.source, c.sender, c.resolution, c.resolved_by,"
    " a.province, a.bank, cl.operator AS claimed_by, ap.approval_id, ap.proposed_by"
    " FROM cases c JOIN agreements a ON a.agreement_id = c.new_agreement_id"
    " LEFT JOIN case_claims cl ON cl.case_id = c.case_id"
    " LEFT JOIN approvals ap ON ap.target_id = c.case_id AND ap.state = 'PENDING'"
)
_BY_STATE = {"dead_messages": "SELECT state, count(*) AS n FROM dead_messages GROUP BY state",
             "cases": "SELECT state, count(*) AS n FROM cases GROUP BY state"}  # fmt: skip


def _first(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[0] if rows else None


class ConsoleReads:
    def __init__(self, query: Query) -> None:
        self._query = query

    # --- operators and sessions ----------------------------------------------------------------

    async def operators(self) -> list[dict[str, Any]]:
        """Every operator (name, role, created_at, created_by, disabled), by name."""
        return await self._query("SELECT name, role, created_at, created_by, disabled FROM operators ORDER BY name", ())

    async def credentials(self, name: str) -> dict[str, Any] | None:
        """The operator's role, password_hash and disabled flag, to check a sign-in."""
        return _first(await self._query("SELECT role, password_hash, disabled FROM operators WHERE name=?", (name,)))

    async def session_operator(self, token_hash: str) -> dict[str, Any] | None:
        """The enabled operator (name, role) of a session, with when the session expires."""
        return _first(await self._query(
            "SELECT o.name, o.role, s.expires_at FROM operator_sessions s JOIN operators o ON o.name = s.operator"
            " WHERE s.token_hash=? AND o.disabled=0",
            (token_hash,),
        ))  # fmt: skip

    # --- proposals (four eyes) -----------------------------------------------------------------

    async def pending_approvals(self) -> list[dict[str, Any]]:
        return await self._query(
            "SELECT approval_id, kind, target_id, proposed_by, reason, preview, proposed_at FROM approvals"
            " WHERE state='PENDING' ORDER BY proposed_at",
            (),
        )

    async def approval(self, approval_id: str) -> dict[str, Any] | None:
        return _first(await self._query("SELECT * FROM approvals WHERE approval_id=?", (approval_id,)))

    # --- dead letters --------------------------------------------------------------------------

    async def dead_groups(self, state: str) -> list[dict[str, Any]]:
        """Dead messages in `state` by reason and sender: how many, the oldest and newest; largest first."""
        return await self._query(
            "SELECT reason, coalesce(sender, '') AS sender, count(*) AS count, min(received_at) AS oldest,"
            " max(received_at) AS newest FROM dead_messages WHERE state=? GROUP BY reason, coalesce(sender, '')"
            " ORDER BY count(*) DESC, reason",
            (state,),
        )

    async def dead_messages(self, *, reason: str | None, sender: str | None, state: str | None,
                            limit: int) -> list[dict[str, Any]]:  # fmt: skip
        """Dead messages, oldest first, filtered by those of reason, sender ("" for none) and state given."""
        where: list[str] = ["1=1"]
        params: list[Any] = []
        for column, value in (("reason", reason), ("coalesce(sender, '')", sender), ("state", state)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        return await self._query(
            "SELECT dead_id, sender, message_id, routing_key, type, reason, error, received_at, state"
            f" FROM dead_messages WHERE {' AND '.join(where)} ORDER BY received_at LIMIT ?", (*params, limit)
        )  # fmt: skip

    async def dead_message(self, dead_id: str) -> dict[str, Any] | None:
        """The whole record (with its encrypted original)."""
        return _first(await self._query("SELECT * FROM dead_messages WHERE dead_id=?", (dead_id,)))

    # --- manual cases --------------------------------------------------------------------------

    async def cases(self, *, province: str | None = None, bank: str | None = None, opened_by: str | None = None,
                    state: str | None = None, limit: int = 500) -> list[dict[str, Any]]:  # fmt: skip
        """Cases, oldest first, with their agreement's province and bank, claim and pending approval;
        filtered by those given (`opened_by`: opened at or before; state "PENDING_APPROVAL": a case
        with a pending approval, whatever its state)."""
        where: list[str] = ["1=1"]
        params: list[Any] = []
        for condition, value in (("a.province=?", province), ("a.bank=?", bank), ("c.opened_at<=?", opened_by)):
            if value:
                where.append(condition)
                params.append(value)
        if state == "PENDING_APPROVAL":
            where.append("ap.approval_id IS NOT NULL")
        elif state:
            where.append("c.state=?")
            params.append(state)
        return await self._query(f"{_CASES} WHERE {' AND '.join(where)} ORDER BY c.opened_at LIMIT ?",
                                 (*params, limit))  # fmt: skip

    async def case_listed(self, case_id: str) -> dict[str, Any] | None:
        """One case as `cases` lists it."""
        return _first(await self._query(f"{_CASES} WHERE c.case_id=?", (case_id,)))

    async def case(self, case_id: str) -> dict[str, Any] | None:
        """The whole case record (with its encrypted original)."""
        return _first(await self._query("SELECT * FROM cases WHERE case_id=?", (case_id,)))

    async def claimant(self, case_id: str) -> str | None:
        """The operator holding the case's claim, if anyone does."""
        row = _first(await self._query("SELECT operator FROM case_claims WHERE case_id=?", (case_id,)))
        return None if row is None else str(row["operator"])

    # --- audit and levels ----------------------------------------------------------------------

    async def audit_log(self, target: str | None = None) -> list[dict[str, Any]]:
        """The audit rows in order (all, or those about one target)."""
        if target:
            return await self._query("SELECT * FROM audit_log WHERE target=? ORDER BY seq", (target,))
        return await self._query("SELECT * FROM audit_log ORDER BY seq", ())

    async def outbox_backlog(self) -> tuple[int, str | None]:
        """How many outbox rows are unsent, and when the oldest of them was queued."""
        rows = await self._query("SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL", ())
        return int(rows[0]["n"]), rows[0]["oldest"]

    async def by_state(self, table: str) -> dict[str, int]:
        """Rows of "dead_messages" or "cases" counted by state."""
        return {r["state"]: int(r["n"]) for r in await self._query(_BY_STATE[table], ())}
