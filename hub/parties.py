"""The party registry: which banks and provinces the hub serves (configuration, not code)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.routing import Party, PartyKind


@dataclass(frozen=True, slots=True)
class Registry:
    banks: frozenset[str]
    provinces: frozenset[str]

    @classmethod
    def of(cls, banks: list[str], provinces: list[str]) -> Registry:
        return cls(frozenset(banks), frozenset(provinces))

    def knows(self, party: Party) -> bool:
        if party.kind is PartyKind.BANK:
            return party.code in self.banks
        return party.code in self.provinces

    def parties(self) -> list[Party]:
        """Every party, in a stable order: banks, then each province's CRM and BOSS."""
        out = [Party(PartyKind.BANK, code) for code in sorted(self.banks)]
        for code in sorted(self.provinces):
            out += [Party(PartyKind.CRM, code), Party(PartyKind.BOSS, code)]
        return out
