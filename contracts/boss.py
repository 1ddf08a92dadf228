"""Messages between a provincial BOSS and the hub (CONTRACT.md, "BOSS").

The hub relays a CRM's `boss.sync` to BOSS as `agreement.sync` with the same body, and BOSS's
`agreement.synced` back to the CRM as `boss.synced`.
"""

from __future__ import annotations

from contracts.common import AsciiId, Message, Reason, SyncOutcome
from contracts.crm import BossSync


class AgreementSync(BossSync):
    """`agreement.sync` to BOSS: the body of the CRM's `boss.sync`, relayed."""


class AgreementSynced(Message):
    """`agreement.synced` from BOSS: the answer, relayed to the CRM as `boss.synced`."""

    agreement_id: AsciiId
    result: SyncOutcome
    reason: Reason | None = None
