"""A simulated bank: starts bank-channel signings (flow 2) and signs formally when the hub approves.

It checks card and identity locally before contacting the hub, as a real bank does; answers
what the hub sends; keeps one `Outcome` per request and its own agreement table; and lets a
scenario wait, bounded, for what it expects. For duplicate scenarios a knob holds approvals
until `confirm_for`, and `confirm_again` / `confirm_unknown` send the odd confirmation.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.bank import (
    BankModifyRequest,
    BankModifyResult,
    BankUnsignRequest,
    BankUnsignResult,
    ModifyNotice,
    SignConfirmed,
    SignFailed,
    SignResponse,
    SignResult,
    UnsignNotice,
)
from contracts.common import AgreementState, Channel, Decision, Message, UserType
from contracts.common import Outcome as ChangeOutcome
from simulators.bank_records import (
    BankAgreement,
    BankKnobs,
    Outcome,
    agreement_of,
    confirmed_body,
    local_refusal,
    sign_request,
)
from simulators.party import PartyClient
from simulators.recording import Received, Recorder
from simulators.seed import Account
from simulators.timefmt import SHANGHAI, now_local

__all__ = ["BankAgreement", "BankKnobs", "BankSimulator", "Outcome"]

log = logging.getLogger(__name__)

_CANCELLED = "CANCELLED"


class BankSimulator:
    """One bank, speaking through its `PartyClient`."""

    def __init__(
        self, client: PartyClient, accounts: Iterable[Account], knobs: BankKnobs | None = None
    ) -> None:
        self.client = client
        self.code = client.party.code
        self.accounts = list(accounts)
        self.knobs = knobs or BankKnobs()
        self.outcomes: dict[str, Outcome] = {}
        self.agreements: dict[str, BankAgreement] = {}
        self.recorder = Recorder(str(client.party))
        self._responses: dict[str, SignResponse] = {}
        self._confirmed: dict[str, SignConfirmed] = {}
        self._pending_terms: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(self.knobs.seed)
        self._handlers: dict[str, Callable[[bytes], Awaitable[None]]] = {
            "sign.response": self._on_sign_response,
            "sign.result": self._on_sign_result,
            "unsign.notice": self._on_unsign_notice,
            "modify.notice": self._on_modify_notice,
            "unsign.result": self._on_unsign_result,
            "modify.result": self._on_modify_result,
        }

    async def start(self, *, wait_s: float = 0.0) -> None:
        await self.client.start(self._handle, wait_s=wait_s)

    async def start_signing(
        self, phone: str, account: Account, channel: Channel = Channel.ONLINE, *, check: bool = True
    ) -> str:
        """Start flow 2 for `phone`; returns the request_id. A local refusal is recorded, not sent."""
        outcome = self._new_outcome("R", phone, account, channel)
        if check:
            outcome.local_refusal = local_refusal(
                self.code, phone, account, channel, self.agreements.values()
            )
        if outcome.local_refusal is not None:
            log.info("%s refused %s locally: %s", self.code, outcome.request_id, outcome.local_refusal)
            await self.recorder.changed()
        else:
            await self._send("sign.request", sign_request(outcome.request_id, phone, account, channel))
        return outcome.request_id

    async def confirm_for(self, request_id: str, **overrides: Any) -> str:
        """Sign formally for an approved request now; `overrides` change fields of the body."""
        response = self._responses.get(request_id)
        if response is None:
            raise ValueError(f"{self.code}: request {request_id} has no sign.response to confirm")
        return await self._confirm(self.outcomes[request_id], response, overrides)

    async def confirm_again(self, request_id: str, *, same_message_id: bool = False) -> str:
        """Send the flow's last `sign.confirmed` again, unchanged (new `message_id` unless told)."""
        body = self._confirmed.get(request_id)
        if body is None:
            raise ValueError(f"{self.code}: request {request_id} was never confirmed")
        outcome = self.outcomes[request_id]
        message_id = outcome.confirmations[-1] if same_message_id else None
        message_id = await self._send("sign.confirmed", body, message_id=message_id)
        outcome.confirmations.append(message_id)
        return message_id

    async def confirm_unknown(self, phone: str, account: Account) -> str:
        """A `sign.confirmed` for a request the hub never saw; returns its request_id."""
        outcome = self._new_outcome("X", phone, account, Channel.ONLINE)
        response = SignResponse(
            request_id=outcome.request_id,
            result=Decision.APPROVED,
            user_type=UserType.POSTPAID,
            auto_pay_allowed=False,
        )
        self._responses[outcome.request_id] = response
        await self._confirm(outcome, response, {})
        return outcome.request_id

    async def unsign(self, bank_agreement_no: str) -> str:
        """The subscriber cancels at the bank."""
        agreement = self.agreements[bank_agreement_no]
        request = BankUnsignRequest(
            bank_agreement_no=bank_agreement_no,
            phone=agreement.phone,
            agreement_version=agreement.agreement_version or None,
            requested_at=now_local(),
        )
        return await self._send("unsign.request", request)

    async def modify(self, bank_agreement_no: str, **terms: Any) -> str:
        """The subscriber changes terms at the bank (recharge_threshold, recharge_amount, auto_pay)."""
        agreement = self.agreements[bank_agreement_no]
        self._pending_terms[bank_agreement_no] = terms
        request = BankModifyRequest(
            bank_agreement_no=bank_agreement_no,
            phone=agreement.phone,
            agreement_version=agreement.agreement_version or None,
            **terms,
        )
        return await self._send("modify.request", request)

    async def wait_for(
        self,
        request_id: str,
        predicate: Callable[[Outcome], bool],
        timeout: float,
        what: str = "the outcome",
    ) -> Outcome:
        outcome = self.outcomes[request_id]
        await self.recorder.wait_until(lambda: predicate(outcome), f"{what} of request {request_id}", timeout)
        return outcome

    async def wait_response(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        outcome = await self.wait_for(
            request_id, lambda o: o.sign_response is not None, timeout, "sign.response"
        )
        assert outcome.sign_response is not None
        return outcome.sign_response

    async def wait_result(self, request_id: str, timeout: float = 10.0, count: int = 1) -> dict[str, Any]:
        """The `count`-th `sign.result` of the request."""
        what = f"sign.result #{count}"
        outcome = await self.wait_for(request_id, lambda o: len(o.sign_results) >= count, timeout, what)
        return outcome.sign_results[count - 1]

    def _new_outcome(self, tag: str, phone: str, account: Account, channel: Channel) -> Outcome:
        request_id = f"{self.code}{tag}{uuid.uuid4().hex[:20].upper()}"
        outcome = Outcome(request_id=request_id, phone=phone, account=account, channel=channel)
        self.outcomes[request_id] = outcome
        return outcome

    async def _handle(self, msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage) -> None:
        await self.recorder.add(Received.of(msg_type, body, incoming))
        handler = self._handlers.get(msg_type)
        if handler is not None:
            await handler(incoming.body)
        await self.recorder.changed()

    async def _on_sign_response(self, raw: bytes) -> None:
        response = SignResponse.model_validate_json(raw)
        outcome = self.outcomes.get(response.request_id)
        if outcome is None or outcome.sign_response is not None:
            return  # another instance's request, or a repeated answer under a new message_id
        outcome.sign_response = response.model_dump(mode="json", exclude_none=True)
        self._responses[response.request_id] = response
        await self.recorder.changed()
        if response.result is not Decision.APPROVED or self.knobs.holds(outcome.phone):
            return
        if self.knobs.delay_s:
            await asyncio.sleep(self.knobs.delay_s)
        if self.knobs.fails(outcome.phone, self._rng):
            outcome.failed = True
            await self._send("sign.failed", SignFailed(request_id=outcome.request_id, reason="card declined"))
        else:
            await self._confirm(outcome, response, {})

    async def _confirm(self, outcome: Outcome, response: SignResponse, overrides: dict[str, Any]) -> str:
        agreement_no = outcome.bank_agreement_no or self._new_agreement_no()
        body = confirmed_body(outcome, response, agreement_no, overrides)
        outcome.bank_agreement_no = body.bank_agreement_no
        self.agreements[body.bank_agreement_no] = agreement_of(outcome, body)
        self._confirmed[outcome.request_id] = body
        message_id = await self._send("sign.confirmed", body)
        outcome.confirmations.append(message_id)
        return message_id

    def _new_agreement_no(self) -> str:
        return f"{self.code}{datetime.now(SHANGHAI):%Y%m%d}{uuid.uuid4().hex[:12].upper()}"

    async def _on_sign_result(self, raw: bytes) -> None:
        result = SignResult.model_validate_json(raw)
        outcome = self.outcomes.get(result.request_id or "")
        if outcome is not None:
            outcome.sign_results.append(result.model_dump(mode="json", exclude_none=True))
        agreement = self.agreements.get(result.bank_agreement_no)
        if agreement is None:
            return
        if result.status is AgreementState.ACTIVE:
            agreement.status, agreement.agreement_id = AgreementState.ACTIVE, result.agreement_id
            agreement.apply_version(result.agreement_version)
        elif result.status is AgreementState.MANUAL_REVIEW:
            agreement.status = AgreementState.MANUAL_REVIEW
        else:
            # REJECTED (DUPLICATE_AGREEMENT, UNKNOWN_REQUEST, ...): the bank cancels its own.
            agreement.status = _CANCELLED

    async def _on_unsign_notice(self, raw: bytes) -> None:
        notice = UnsignNotice.model_validate_json(raw)
        agreement = self.agreements.get(notice.bank_agreement_no)
        if agreement is not None and agreement.apply_version(notice.agreement_version):
            agreement.status = _CANCELLED
            log.info("%s cancelled %s: %s", self.code, notice.bank_agreement_no, notice.reason_code)

    async def _on_modify_notice(self, raw: bytes) -> None:
        notice = ModifyNotice.model_validate_json(raw)
        agreement = self.agreements.get(notice.bank_agreement_no)
        if agreement is not None and agreement.apply_version(notice.agreement_version):
            agreement.recharge_threshold = notice.recharge_threshold
            agreement.recharge_amount = notice.recharge_amount
            agreement.auto_pay = notice.auto_pay

    async def _on_unsign_result(self, raw: bytes) -> None:
        result = BankUnsignResult.model_validate_json(raw)
        agreement = self.agreements.get(result.bank_agreement_no)
        if result.result is ChangeOutcome.OK and agreement is not None:
            agreement.apply_version(result.agreement_version)
            agreement.status = _CANCELLED

    async def _on_modify_result(self, raw: bytes) -> None:
        result = BankModifyResult.model_validate_json(raw)
        agreement = self.agreements.get(result.bank_agreement_no)
        terms = self._pending_terms.pop(result.bank_agreement_no, {})
        ok = result.result is ChangeOutcome.OK and agreement is not None
        if ok and agreement is not None and agreement.apply_version(result.agreement_version):
            for name, value in terms.items():
                setattr(agreement, name, value)

    async def _send(self, msg_type: str, body: Message, *, message_id: str | None = None) -> str:
        message_id = await self.client.publish(msg_type, body, message_id=message_id)
        if self.knobs.send_twice:
            await self.client.publish(msg_type, body, message_id=message_id)
        return message_id
