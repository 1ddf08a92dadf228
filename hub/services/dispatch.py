"""Which handler takes which accepted message. A catalogue type without one is NOT_SUPPORTED.

Flow 4 (contract 1.1, the recharge) is not built yet: its types (`debit.result`, `reverse.result`,
`recharge.request`, `credit.result`, BOSS's `recon.file`) have no handler, and a bank's `recon.file`
of scope `DEBITS` is NOT_SUPPORTED too, while its `DAILY` and `MONTHLY` files are flow 3's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts.recon import SETTLEMENT_SCOPES, ReconFile
from contracts.routing import PartyKind
from hub.messaging.edge import Accepted
from hub.services import bank_signing, boss_relay, lifecycle, reconciliation
from hub.services.context import Ctx

Handler = Callable[[Ctx, Any], Awaitable[None]]

_B, _C, _O = PartyKind.BANK, PartyKind.CRM, PartyKind.BOSS
HANDLERS: dict[tuple[PartyKind, str], Handler] = {
    (_B, "sign.request"): bank_signing.on_sign_request,
    (_B, "sign.confirmed"): bank_signing.on_sign_confirmed,
    (_B, "sign.failed"): bank_signing.on_sign_failed,
    (_B, "unsign.request"): lifecycle.on_bank_unsign,
    (_B, "modify.request"): lifecycle.on_bank_modify,
    (_B, "recon.file"): reconciliation.on_recon_file,
    (_C, "recon.file"): reconciliation.on_recon_file,
    (_C, "errors.applied"): reconciliation.on_errors_applied,
    (_C, "unsign.request"): lifecycle.on_crm_unsign,
    (_C, "modify.request"): lifecycle.on_crm_modify,
    (_C, "verify.response"): bank_signing.on_verify_response,
    (_C, "sign.synced"): bank_signing.on_sign_synced,
    (_C, "boss.sync"): boss_relay.on_boss_sync,
    (_O, "agreement.synced"): boss_relay.on_agreement_synced,
}


def route(accepted: Accepted) -> Handler | str:
    """The handler that takes an accepted message, or why this hub does not take it yet
    (NOT_SUPPORTED). Looked up once per message, when the intake classifies it."""
    message = accepted.message
    if isinstance(message, ReconFile) and message.scope in SETTLEMENT_SCOPES:
        return f"recon.file of scope {message.scope.value} (flow 4) is not handled by this hub yet"
    handler = HANDLERS.get((accepted.sender.kind, accepted.msg_type))
    return f"{accepted.msg_type} is not handled by this hub yet" if handler is None else handler
