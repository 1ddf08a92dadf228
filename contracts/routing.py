"""Routing keys and party names (CONTRACT.md, "Transport" and "Routing keys").

`<kind>.<code>.<type>`: on the inbound exchange kind and code name the sender, on the outbound
exchange the addressee. A type may itself contain dots (`sign.request`, `agreement.synced`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class PartyKind(StrEnum):
    BANK = "bank"
    CRM = "crm"
    BOSS = "boss"


PROVINCES: tuple[str, ...] = (
    "BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL", "SH", "JS", "ZJ", "AH", "FJ", "JX", "SD", "HA",
    "HB", "HN", "GD", "GX", "HI", "CQ", "SC", "GZ", "YN", "XZ", "SN", "GS", "QH", "NX", "XJ",
)  # fmt: skip
BANKS: tuple[str, ...] = (
    "ICBC", "ABC", "BOC", "CCB", "BOCOM", "CMB", "PSBC", "CITIC", "CEB", "CMBC", "SPDB", "CIB",
)  # fmt: skip

_CODE = re.compile(r"^[A-Z0-9]{2,16}$")
_TYPE = re.compile(r"^[a-z]+(\.[a-z]+)+$")


@dataclass(frozen=True, slots=True)
class Party:
    kind: PartyKind
    code: str

    def __str__(self) -> str:
        return f"{self.kind.value}.{self.code}"

    @classmethod
    def parse(cls, text: str) -> Party:
        kind, _, code = text.partition(".")
        if kind not in PartyKind.__members__.values() or not _CODE.match(code):
            raise ValueError(f"not a party name: {text!r}")
        return cls(PartyKind(kind), code)


@dataclass(frozen=True, slots=True)
class RoutingKey:
    party: Party
    type: str

    def __str__(self) -> str:
        return f"{self.party}.{self.type}"

    @classmethod
    def parse(cls, text: str) -> RoutingKey:
        parts = text.split(".")
        if len(parts) < 3:
            raise ValueError(f"routing key {text!r} is not <kind>.<code>.<type>")
        party = Party.parse(f"{parts[0]}.{parts[1]}")
        msg_type = ".".join(parts[2:])
        if not _TYPE.match(msg_type):
            raise ValueError(f"routing key {text!r} has no valid message type")
        return cls(party, msg_type)


def routing_key(party: Party, msg_type: str) -> str:
    return f"{party}.{msg_type}"
