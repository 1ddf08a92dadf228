"""What a fuzzed input must lead to, written down by the generator from how it made the input.

The fuzzers never ask the hub's own classifier what to expect: that would prove nothing. Each input
(bench/fuzz_inputs.py) records how it was made (`Made`: which party the routing key names, what the
type is, whether the envelope and the body follow the contract) and `label` turns that into an
`Expect` from CONTRACT.md: "Envelope", "Values", the message catalogue, "Failures" and flow 4's
`NOT_SUPPORTED`. Where the contract is silent, the label follows the choice the hub publishes in its
AsyncAPI document (`contracts/asyncapi.py`, NOTES) or, failing that, documents in its code; each
such place says so.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from contracts.routing import PartyKind

_B, _C, _O = PartyKind.BANK, PartyKind.CRM, PartyKind.BOSS


@dataclass(frozen=True)
class Expect:
    """The outcome the contract promises for one input."""

    accepted: bool
    reason: str | None = None  # refused: the dead copy's x-signhub-reason and message.rejected's reason_code
    answer_to: str | None = None  # refused: the party told (None: nobody); accepted: the party answered
    answers: tuple[str, ...] = ()  # accepted: the types that answer it; () when no answer is due
    correlated: bool = True  # the answer names the input (correlation_id); False: counted per addressee
    shared: str | None = None  # accepted inputs with the same key are one request and share one answer
    needs_state: bool = False  # refused for what the hub holds, not for the message alone
    flow: str | None = None  # a sign.request: the bank-channel flow (bank, request_id) it opens or repeats
    closes: str | None = None  # a sign.failed: the flow it closes, "without an answer"


@dataclass(frozen=True)
class Made:
    """How an input was made, as far as the contract cares."""

    kind: PartyKind  # the catalogue entry whose body was made
    type: str
    sender: str | None  # the registered party the routing key names; None: it names none
    type_refusal: str | None  # the routing key's type is no type (UNKNOWN_TYPE) or another kind's
    envelope_ok: bool  # type property, content type, schema version (the message_id is the input's)
    body: dict[str, Any] | None  # the body as made when the contract takes it; None: spoilt


@dataclass(frozen=True)
class Answer:
    types: tuple[str, ...]  # () : no answer is due
    to: PartyKind | None = None  # a relay: the party of this kind with the sender's code
    correlated: bool = True
    same: tuple[str, ...] = ()  # body fields that make repeats one request, answered once


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# CONTRACT.md, message catalogue: the bold fields, and the "when X" ones where the fuzzer's valid
# body (bench/fuzz_inputs.py VALID) is X. `request_id`: "request_id or session_id", and no valid
# body has a session_id.
_RECON = frozenset({"file_name", "business_date", "scope", "record_count", "sha256"})
REQUIRED: dict[tuple[PartyKind, str], frozenset[str]] = {
    (_B, "sign.request"): frozenset(
        {"request_id", "phone", "account_no", "account_type", "holder_name", "id_type", "id_no", "channel"}),
    (_B, "sign.confirmed"): frozenset(
        {"request_id", "bank_agreement_no", "phone", "account_no", "account_type", "signed_at"}),
    (_B, "sign.failed"): frozenset({"request_id", "reason"}),
    (_B, "unsign.request"): frozenset({"bank_agreement_no", "phone"}),
    (_B, "modify.request"): frozenset({"bank_agreement_no", "phone"}),
    (_B, "recon.file"): _RECON,
    # bank_txn_no and debited_at: "when SUCCEEDED"
    (_B, "debit.result"): frozenset({"debit_id", "result", "amount", "bank_txn_no", "debited_at"}),
    (_B, "reverse.result"): frozenset({"reversal_id", "debit_id", "result"}),
    # user_type, auto_pay_allowed "when OK"; threshold and amount "when OK and PREPAID"
    (_C, "verify.response"): frozenset({"verify_id", "result", "user_type", "recharge_threshold",
                                        "recharge_amount", "auto_pay_allowed"}),
    (_C, "sign.synced"): frozenset({"agreement_id", "result"}),
    (_C, "unsign.request"): frozenset({"phone"}),
    (_C, "modify.request"): frozenset({"phone"}),
    (_C, "boss.sync"): frozenset({"agreement_id", "phone", "action"}),
    (_C, "recon.file"): _RECON,
    (_C, "errors.applied"): frozenset({"file_name", "applied", "failed"}),
    (_O, "agreement.synced"): frozenset({"agreement_id", "result"}),
    (_O, "recharge.request"): frozenset({"recharge_id", "phone", "trigger", "balance"}),  # balance: LOW_BALANCE
    (_O, "credit.result"): frozenset({"recharge_id", "result"}),
    (_O, "recon.file"): _RECON,
}  # fmt: skip
# Every field name of an inbound body in the catalogue: an "unknown field" is none of these.
CONTRACT_FIELDS = _names(
    "request_id phone account_no account_type holder_name id_type id_no channel requested_at session_id "
    "bank_agreement_no recharge_threshold recharge_amount auto_pay signed_at reason agreement_version "
    "file_name business_date scope record_count sha256 debit_id result amount reason_code bank_txn_no "
    "debited_at reversal_id verify_id existing_agreement_id user_type auto_pay_allowed agreement_id action "
    "applied failed recharge_id trigger balance bill_id balance_after credited_at"
)
# A recon.file's scopes by its sender's kind (CONTRACT.md: a bank DAILY/MONTHLY or DEBITS, a CRM "as
# from a bank" for its daily / monthly file, BOSS CREDITS; the AsyncAPI notes spell it out).
SCOPES = {_B: ("DAILY", "MONTHLY", "DEBITS"), _C: ("DAILY", "MONTHLY"), _O: ("CREDITS",)}

# How the contract writes each value ("Values"), by the fields the fuzzer spoils. Not listed: an
# ASCII format or enumeration (phone, card and ID numbers, dates, times, sha256, enumerations).
ID_FIELDS = _names("request_id bank_agreement_no file_name debit_id bank_txn_no reversal_id verify_id agreement_id "
                   "recharge_id")  # fmt: skip
NUMBER_FIELDS = _names("recharge_threshold recharge_amount amount record_count applied failed balance balance_after "
                       "auto_pay_allowed")  # fmt: skip
NAME_FIELDS, TEXT_FIELDS = frozenset({"holder_name"}), frozenset({"reason"})
# The contract gives free text no bound; the AsyncAPI document's schema says maxLength 500.
TEXT_MAX = 500
_ID = re.compile(r"[\x20-\x2e\x30-\x7b\x7d\x7e]{1,64}")  # "1-64 printable ASCII without | or /"


def id_ok(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def name_ok(value: str) -> bool:
    """`holder_name`: "UTF-8 (NFC), 1-64 characters". Which characters the contract does not say;
    the hub refuses control, format, private-use and unassigned ones (contracts/common.py)."""
    normal = unicodedata.normalize("NFC", value)
    return 1 <= len(normal) <= 64 and not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"}
                                              for c in normal)  # fmt: skip


# What answers an accepted message, by the type's catalogue line (CONTRACT.md). Types not listed
# are refused before any answer (flow 4: NOT_SUPPORTED; errors.applied: see `label`).
_SIGN_REQUEST = ("request_id", "phone", "account_no", "account_type", "holder_name", "id_no", "channel")
ANSWERS: dict[tuple[PartyKind, str], Answer] = {
    # sign.response at once when refused (other content under a known request_id: REQUEST_MISMATCH),
    # else after the CRM's answer or its silence (CRM_TIMEOUT). The same request_id and content under
    # a new message_id: the contract speaks only of a repeated message_id ("a copy of that answer";
    # "nothing more" while it is pending), and the hub does the same for these: one answer between them.
    (_B, "sign.request"): Answer(("sign.response",), same=_SIGN_REQUEST),
    # "A sign.confirmed that matches no open request or session is answered sign.result REJECTED"
    (_B, "sign.confirmed"): Answer(("sign.result",)),
    # "the bank did not sign; the hub closes the request or session, without an answer"
    (_B, "sign.failed"): Answer(()),
    (_B, "unsign.request"): Answer(("unsign.result",)),  # "answers to your unsign.request"
    (_B, "modify.request"): Answer(("modify.result",)),
    # "A recon.file for a file already reconciled gets its first answer again"; AsyncAPI: "an exact
    # copy of its first answer (nothing while it is still running)", keyed by the file_name.
    (_B, "recon.file"): Answer(("recon.result",), same=("file_name",)),
    # "any answer that arrives before the last ask has timed out counts; a later one is acknowledged
    # and changes nothing"; AsyncAPI: "A verify.response with an unknown verify_id ... is acknowledged
    # and changes nothing". The fuzzer's verify_id is never the hub's.
    (_C, "verify.response"): Answer(()),
    # sign.synced is itself the CRM's answer to sign.notify: the catalogue has nothing answering it.
    (_C, "sign.synced"): Answer(()),
    (_C, "unsign.request"): Answer(("unsign.result",)),
    (_C, "modify.request"): Answer(("modify.result",)),
    # "the CRM syncs an agreement to its BOSS; the hub relays it" as agreement.sync, same body
    (_C, "boss.sync"): Answer(("agreement.sync",), to=_O),
    # recon.errors "sent for every accepted file"; recon.result "when your file is refused whole"
    (_C, "recon.file"): Answer(("recon.errors", "recon.result"), same=("file_name",)),
    # "BOSS answers ... agreement.synced, which the hub relays to the CRM as boss.synced". The
    # fuzzer's BOSS names no agreement.sync (no correlation_id): the relays are counted per CRM.
    (_O, "agreement.synced"): Answer(("boss.synced",), to=_C, correlated=False),
}
# Flow 4 (1.1): "a hub that does not handle them yet answers NOT_SUPPORTED" (AsyncAPI: these types,
# a bank's DEBITS file and a BOSS's CREDITS file).
FLOW4_TYPES = frozenset({"debit.result", "reverse.result", "recharge.request", "credit.result"})
FLOW4_SCOPES = frozenset({"DEBITS", "CREDITS"})


def label(made: Made, message_id_ok: bool) -> Expect:
    """The contract's outcome for an input made as `made`.

    Several defects: the contract lists the refusals ("Failures") but fixes no order between them.
    The label follows the order the hub documents at its edge (hub/messaging/edge.py), which follows
    from what each check needs: an unknown sender first (nobody can be told anything); then the
    type, which decides which body is valid (a type of no catalogue UNKNOWN_TYPE, of another kind's
    UNAUTHORIZED_SENDER, as the AsyncAPI notes say); then the envelope and the body together
    (INVALID_MESSAGE, every problem listed); only a valid message is then NOT_SUPPORTED (flow 4 says
    "So is a body that fails validation (INVALID_MESSAGE)" of flow-4 types too).
    """
    if made.sender is None:
        return Expect(False, "UNKNOWN_SENDER")  # "has no queue to be answered on ... nothing is sent"
    if made.type_refusal is not None:
        return Expect(False, made.type_refusal, made.sender)
    if not (message_id_ok and made.envelope_ok and made.body is not None):
        return Expect(False, "INVALID_MESSAGE", made.sender)
    if made.type in FLOW4_TYPES or (made.type == "recon.file" and made.body.get("scope") in FLOW4_SCOPES):
        return Expect(False, "NOT_SUPPORTED", made.sender)
    if made.type == "errors.applied":
        # The fuzzer's CRM applies a file the hub never sent it (no file of a fuzz run is ever
        # reconciled): AsyncAPI, "one naming no error file sent to that CRM is refused INVALID_MESSAGE".
        return Expect(False, "INVALID_MESSAGE", made.sender, needs_state=True)
    answer = ANSWERS[(made.kind, made.type)]
    answer_to = f"{answer.to.value}.{made.sender.split('.', 1)[1]}" if answer.to else made.sender
    same = [made.body.get(f) for f in answer.same]
    shared = f"{made.sender} {made.type} {json.dumps(same, ensure_ascii=False)}" if same else None
    flow = f"{made.sender} {made.body.get('request_id')}"
    return Expect(True, None, answer_to if answer.types else None, answer.types, answer.correlated, shared,
                  flow=flow if made.type == "sign.request" else None,
                  closes=flow if made.type == "sign.failed" else None)  # fmt: skip
