"""A simulated provincial CRM: verifies numbers, records agreements, sends SMS and syncs its BOSS.

It answers `verify.request` from its register (DOMAIN.md flow 2 step 4), records what the hub
notifies (steps 10-12), relays every change to BOSS with `boss.sync`, and can start changes
at the operator (`unsign.request`, `modify.request`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.common import Outcome, Scope, SyncAction, SyncOutcome
from contracts.crm import (
    BossSync,
    BossSynced,
    CrmModifyRequest,
    CrmModifyResult,
    CrmUnsignRequest,
    CrmUnsignResult,
    ErrorsApplied,
    ModifyNotify,
    SignNotify,
    SignSynced,
    UnsignNotify,
    VerifyRequest,
)
from contracts.recon import ReconErrors
from simulators import recon_files, sms
from simulators.crm_register import CrmAgreement, CrmKnobs, provisional_agreement, verify_answer
from simulators.party import PartyClient
from simulators.recording import Received, Recorder
from simulators.seed import Subscriber
from simulators.timefmt import now_local

__all__ = ["CrmAgreement", "CrmKnobs", "CrmSimulator"]

log = logging.getLogger(__name__)

_Handler = Callable[[bytes, AbstractIncomingMessage], Awaitable[None]]


class CrmSimulator:
    """One province's CRM, speaking through its `PartyClient`."""

    def __init__(
        self,
        client: PartyClient,
        subscribers: Iterable[Subscriber],
        knobs: CrmKnobs | None = None,
        sms_log: Path | None = None,
        files: Path | None = None,
    ) -> None:
        self.client = client
        self.province = client.party.code
        self.knobs = knobs or CrmKnobs()
        self.register = {s.phone: s for s in subscribers if s.in_register}
        self.agreements: dict[str, CrmAgreement] = {}
        self.boss_results: dict[str, list[str]] = {}
        self.sms = sms.SmsLog(sms_log)
        self.recorder = Recorder(str(client.party))
        self.files = files  # the shared file area of reconciliation files
        self.errors_applied: dict[str, tuple[int, int]] = {}  # error file -> (applied, failed)
        self._pending_terms: dict[str, dict[str, Any]] = {}
        for subscriber in self.register.values():
            agreement = provisional_agreement(subscriber)
            if agreement is not None:
                self.agreements[agreement.agreement_id] = agreement
        self._handlers: dict[str, _Handler] = {
            "verify.request": self._on_verify_request,
            "sign.notify": self._on_sign_notify,
            "unsign.notify": self._on_unsign_notify,
            "modify.notify": self._on_modify_notify,
            "boss.synced": self._on_boss_synced,
            "unsign.result": self._on_unsign_result,
            "modify.result": self._on_modify_result,
            "recon.errors": self._on_recon_errors,
        }

    async def start(self, *, wait_s: float = 0.0) -> None:
        await self.client.start(self._handle, wait_s=wait_s)

    def agreement_of(self, phone: str) -> CrmAgreement | None:
        """The number's active agreement (formal or provisional), if any."""
        return next((a for a in self.agreements.values() if a.phone == phone and a.active), None)

    async def unsign_at_operator(self, phone: str) -> str:
        """The subscriber cancels at the operator (replies QXYD); returns the message_id."""
        agreement = self.agreement_of(phone)
        request = CrmUnsignRequest(
            phone=phone,
            agreement_id=agreement.agreement_id if agreement else None,
            agreement_version=agreement.version if agreement else None,
            requested_at=now_local(),
        )
        return await self.client.publish("unsign.request", request)

    async def modify_at_operator(self, phone: str, **terms: Any) -> str:
        """The subscriber changes terms at the operator (recharge_threshold, recharge_amount, auto_pay)."""
        agreement = self.agreement_of(phone)
        self._pending_terms[phone] = terms
        request = CrmModifyRequest(
            phone=phone,
            agreement_id=agreement.agreement_id if agreement else None,
            agreement_version=agreement.version if agreement else None,
            **terms,
        )
        return await self.client.publish("modify.request", request)

    # The waits own their timeout so that the error can name what did not arrive.
    async def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        await self.recorder.wait_until(predicate, what, timeout)

    async def wait_agreement(self, phone: str, timeout: float = 10.0) -> CrmAgreement:
        """The number's formal agreement, once the hub has notified it."""
        await self.wait_until(lambda: self._formal(phone) is not None, f"sign.notify for {phone}", timeout)
        agreement = self._formal(phone)
        assert agreement is not None
        return agreement

    def _formal(self, phone: str) -> CrmAgreement | None:
        agreement = self.agreement_of(phone)
        return agreement if agreement is not None and not agreement.provisional else None

    async def _handle(self, msg_type: str, body: dict[str, Any], incoming: AbstractIncomingMessage) -> None:
        await self.recorder.add(Received.of(msg_type, body, incoming))
        handler = self._handlers.get(msg_type)
        if handler is not None:
            await handler(incoming.body, incoming)
        await self.recorder.changed()

    async def _on_verify_request(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        request = VerifyRequest.model_validate_json(raw)
        if self.knobs.is_silent(request.phone):
            log.info("crm.%s stays silent on verify %s", self.province, request.verify_id)
            return
        if self.knobs.delay_s:
            await asyncio.sleep(self.knobs.delay_s)
        agreement = self.agreement_of(request.phone)
        subscriber = self.register.get(request.phone)
        answer = verify_answer(request.verify_id, subscriber, agreement.agreement_id if agreement else None)
        await self.client.publish("verify.response", answer, correlation_id=incoming.message_id)
        if self.knobs.answer_twice:
            await self.client.publish("verify.response", answer, correlation_id=incoming.message_id)

    async def _on_sign_notify(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        notify = SignNotify.model_validate_json(raw)
        known = self.agreements.get(notify.agreement_id)
        fresh = known is None or notify.agreement_version > known.version
        failed = notify.phone in self.knobs.sync_fails
        if fresh and not failed:
            self._record(notify)
        result = SyncOutcome.FAILED if failed else SyncOutcome.OK
        reason = "subscriber record locked" if failed else None
        synced = SignSynced(agreement_id=notify.agreement_id, result=result, reason=reason)
        await self.client.publish("sign.synced", synced, correlation_id=incoming.message_id)
        if fresh and not failed:
            await self._sync_boss(self.agreements[notify.agreement_id], SyncAction.ADD)
            self.sms.send(
                notify.phone,
                sms.signed_text(
                    notify.bank_code,
                    notify.account_last4,
                    notify.recharge_threshold,
                    notify.recharge_amount,
                    notify.auto_pay,
                ),
            )

    def _record(self, notify: SignNotify) -> None:
        # The hub's agreement is the truth: any other active one for the number gives way.
        for other in self.agreements.values():
            if other.phone == notify.phone and other.agreement_id != notify.agreement_id and other.active:
                log.warning(
                    "crm.%s replaces %s by %s", self.province, other.agreement_id, notify.agreement_id
                )
                other.status = "CANCELLED"
        self.agreements[notify.agreement_id] = CrmAgreement(
            agreement_id=notify.agreement_id,
            phone=notify.phone,
            bank_code=notify.bank_code,
            user_type=notify.user_type,
            version=notify.agreement_version,
            account_last4=notify.account_last4,
            recharge_threshold=notify.recharge_threshold,
            recharge_amount=notify.recharge_amount,
            auto_pay=notify.auto_pay,
            signed_at=notify.signed_at.isoformat(),
            changed_at=now_local().isoformat(),
        )

    async def _on_unsign_notify(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        notify = UnsignNotify.model_validate_json(raw)
        await self._cancel(notify.agreement_id, notify.agreement_version)

    async def _on_modify_notify(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        notify = ModifyNotify.model_validate_json(raw)
        terms = notify.model_dump(include={"recharge_threshold", "recharge_amount", "auto_pay"})
        await self._change(notify.agreement_id, notify.agreement_version, terms)

    async def _on_unsign_result(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        result = CrmUnsignResult.model_validate_json(raw)
        agreement = self._target(result.agreement_id, result.phone)
        if result.result is Outcome.OK and agreement is not None:
            await self._cancel(agreement.agreement_id, result.agreement_version)

    async def _on_modify_result(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        result = CrmModifyResult.model_validate_json(raw)
        agreement = self._target(result.agreement_id, result.phone)
        terms = self._pending_terms.pop(result.phone, {})
        if result.result is Outcome.OK and agreement is not None:
            await self._change(agreement.agreement_id, result.agreement_version, terms)

    def _target(self, agreement_id: str | None, phone: str) -> CrmAgreement | None:
        return self.agreements.get(agreement_id) if agreement_id else self.agreement_of(phone)

    async def _cancel(self, agreement_id: str, version: int | None) -> None:
        agreement = self._newer(agreement_id, version)
        if agreement is None or not agreement.active:
            return
        agreement.status = "CANCELLED"
        await self._sync_boss(agreement, SyncAction.DELETE)
        self.sms.send(agreement.phone, sms.cancelled_text(agreement.bank_code))

    async def _change(self, agreement_id: str, version: int | None, terms: dict[str, Any]) -> None:
        agreement = self._newer(agreement_id, version)
        if agreement is None:
            return
        for name, value in terms.items():
            setattr(agreement, name, value)
        await self._sync_boss(agreement, SyncAction.UPDATE)
        text = sms.modified_text(
            agreement.bank_code, agreement.recharge_threshold, agreement.recharge_amount, agreement.auto_pay
        )
        self.sms.send(agreement.phone, text)

    def _newer(self, agreement_id: str, version: int | None) -> CrmAgreement | None:
        """The agreement, moved to `version`; None when unknown or `version` is not newer (drop)."""
        agreement = self.agreements.get(agreement_id)
        if agreement is None:
            log.warning("crm.%s knows no agreement %s", self.province, agreement_id)
            return None
        if version is not None and version <= agreement.version:
            return None
        agreement.version = version or agreement.version
        agreement.changed_at = now_local().isoformat()
        return agreement

    async def _sync_boss(self, agreement: CrmAgreement, action: SyncAction) -> None:
        sync = BossSync(
            agreement_id=agreement.agreement_id,
            phone=agreement.phone,
            action=action,
            user_type=agreement.user_type,
            recharge_threshold=agreement.recharge_threshold,
            recharge_amount=agreement.recharge_amount,
            auto_pay=agreement.auto_pay,
        )
        await self.client.publish("boss.sync", sync)

    async def upload_file(self, day: date, scope: Scope) -> str:
        """Writes this CRM's DAILY or MONTHLY file from its data and announces it; returns its name."""
        assert self.files is not None, "a CRM without a file area cannot reconcile"
        records = recon_files.crm_records(self.agreements.values(), day, scope)
        uploaded = recon_files.upload(self.files, str(self.client.party), day, scope, records)
        await self.client.publish("recon.file", uploaded.announcement)
        return uploaded.announcement.file_name

    async def _on_recon_errors(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        """Flow 3 steps 6-10: correct the agreements, sync BOSS, tell the subscribers, answer."""
        notice = ReconErrors.model_validate_json(raw)
        assert self.files is not None, "a CRM without a file area cannot reconcile"
        applied = failed = 0
        for fields in recon_files.read_errors(
            self.files, str(self.client.party), notice.file_name, notice.sha256
        ):
            try:
                changed = recon_files.apply_error(self.agreements, fields)
            except (ValueError, KeyError):
                failed += 1
                continue
            applied += 1
            if changed is not None:
                await self._sync_boss(changed[0], SyncAction(changed[1]))
                self.sms.send(changed[0].phone, sms.reconciled_text(changed[0].bank_code, changed[0].active))
        self.errors_applied[notice.file_name] = (applied, failed)
        answer = ErrorsApplied(file_name=notice.file_name, applied=applied, failed=failed)
        await self.client.publish("errors.applied", answer, correlation_id=incoming.message_id)

    async def _on_boss_synced(self, raw: bytes, incoming: AbstractIncomingMessage) -> None:
        synced = BossSynced.model_validate_json(raw)
        self.boss_results.setdefault(synced.agreement_id, []).append(synced.result.value)
