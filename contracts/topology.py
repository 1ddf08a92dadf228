"""Names of the exchanges and queues that parties see (CONTRACT.md, "Transport").

Every name starts with the hub's prefix, so several hubs or test runs can share one broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.routing import Party


@dataclass(frozen=True, slots=True)
class Names:
    prefix: str = "signhub"

    @property
    def inbound_exchange(self) -> str:
        return f"{self.prefix}.inbound"

    @property
    def outbound_exchange(self) -> str:
        return f"{self.prefix}.outbound"

    @property
    def manual_queue(self) -> str:
        return f"{self.prefix}.manual"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    def party_queue(self, party: Party) -> str:
        return f"{self.prefix}.party.{party}"

    @staticmethod
    def party_binding(party: Party) -> str:
        return f"{party}.#"
