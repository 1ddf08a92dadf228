"""The running simulators of one hub, by bank or province code: what `simulators.runner` starts
and what scenarios, reconciliation rounds and web sites drive."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from simulators.bank import BankSimulator
from simulators.boss import BossSimulator
from simulators.crm import CrmSimulator
from simulators.party import HandlerError, PartyClient
from simulators.seed import World


@dataclass(slots=True)
class Simulators:
    """The running simulators, by bank or province code."""

    world: World
    banks: dict[str, BankSimulator] = field(default_factory=dict)
    crms: dict[str, CrmSimulator] = field(default_factory=dict)
    bosses: dict[str, BossSimulator] = field(default_factory=dict)

    def clients(self) -> list[PartyClient]:
        return [s.client for group in (self.banks, self.crms, self.bosses) for s in group.values()]

    def errors(self) -> dict[str, list[HandlerError]]:
        """Messages any simulator failed on (acknowledged all the same), by party."""
        return {str(c.party): list(c.errors) for c in self.clients() if c.errors}

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients()), return_exceptions=True)
