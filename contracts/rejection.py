"""`message.rejected`: the hub could not take a message a party sent (CONTRACT.md, "Failures")."""

from __future__ import annotations

from contracts.common import Message, ReasonCode


class MessageRejected(Message):
    """Sent to the sender of a refused message; `message_id` names the refused message."""

    message_id: str
    type: str
    reason_code: ReasonCode
    errors: list[str]
