"""The AsyncAPI 3.0.0 document of the wire contract, generated from `contracts.catalogue`.

Nothing here is written per message: every message, payload schema and operation comes from
the catalogue's entries and their pydantic models, so the document cannot drift from the code
that validates the wire. `signhub asyncapi` prints `dump()`.

The document is written from the hub's point of view, as AsyncAPI 3 asks (operations describe
what the documented application does): the hub *receives* on the inbound exchange what parties
publish there, and *sends* on the outbound exchange what parties consume from their queues.
"""

from __future__ import annotations

import json
from typing import Any, Final

from contracts import catalogue
from contracts.catalogue import Entry
from contracts.common import Message, QueueReason
from contracts.envelope import (
    CONTENT_TYPE,
    H_BODY_KEPT,
    H_BODY_LENGTH,
    H_CASE_ID,
    H_ERROR,
    H_EXISTING_AGREEMENT_ID,
    H_REASON,
    H_ROUTING_KEY,
    H_SCHEMA_VERSION,
    H_SENDER,
    H_SOURCE,
    SCHEMA_VERSION,
)
from contracts.routing import BANKS, PROVINCES, PartyKind
from contracts.topology import Names

JSONObject = dict[str, Any]

ASYNCAPI_VERSION: Final = "3.0.0"
AMQP_BINDING_VERSION: Final = "0.3.0"
INBOUND: Final = "inbound"
OUTBOUND: Final = "outbound"

# Choices made where CONTRACT.md is silent. Other components implement them; they are listed
# here so a party reading only the published document knows what to expect.
NOTES: Final[tuple[str, ...]] = (
    f"A missing `{H_SCHEMA_VERSION}` header is read as {SCHEMA_VERSION}. A missing `content_type` "
    f"is accepted; any content type other than `{CONTENT_TYPE}` is refused (`INVALID_MESSAGE`).",
    'A refused message without a usable `message_id` gets `message.rejected` with `message_id` "".',
    "A `sign.confirmed` repeated under a new `message_id` with the same content gets an exact copy "
    "(same `message_id` and `correlation_id`) of the latest `sign.result` for that flow.",
    "A type that is in another kind's inbound catalogue is refused `UNAUTHORIZED_SENDER`; a type in "
    "no inbound catalogue is refused `UNKNOWN_TYPE`.",
    "A `verify.response` with an unknown `verify_id`, or arriving after its flow closed, is "
    "acknowledged and changes nothing.",
    "A `sign.confirmed` whose terms differ from the approved terms (recharge_threshold or "
    "recharge_amount given and different, auto_pay true where auto_pay_allowed is false, prepaid "
    "terms for a postpaid number) is answered `REQUEST_MISMATCH`; terms it omits take the CRM's.",
    "The copies on the manual and dead queues carry `account_no` masked to its first 6 and last 4 "
    "digits and `id_no` masked to its last 4 characters; a card or ID number in a message's "
    "`message_id`, `type` or routing key is masked the same way there (the sender's own "
    "`message.rejected` carries the `message_id` it gave). Of a refused body over 64 KB only the first "
    f"4096 bytes are kept, in the store and the dead copy, whose `{H_BODY_LENGTH}` and `{H_BODY_KEPT}` "
    "headers say so; such a message cannot be replayed.",
    "BOSS parties get `message.rejected` too: the contract's Failures rules apply to every sender.",
    "Operations are described from the hub's point of view: `receive` on the inbound exchange is "
    "what a party publishes; `send` on the outbound exchange is what a party consumes from its queue.",
    "Flow 1: a `sign.confirmed` or `sign.failed` naming a `session_id` is taken only from the bank the "
    "session was opened for, after its signing page redeemed the session's token, and within 30 minutes "
    "of the session's opening; otherwise `sign.result` `REJECTED`, `UNKNOWN_REQUEST` (a `sign.failed` "
    "changes nothing). Another phone or other terms than the CRM's is `REQUEST_MISMATCH`.",
    "Flow 1: `sign.result` for a session carries `session_id` and no `request_id`; `sign.notify` carries "
    "`channel` `OPERATOR_WEB`. One failed check at the bank's page ends the session (`sign.failed`).",
    "Flow 1's HTTP side (web halls and bank pages) is described in the README, section \"Operator "
    'channel", and in `contracts/web.py`.',
    "Flow 3: files are reconciled one at a time in arrival order; a province's file is compared with the "
    "hub as it stands then (after the banks' files that came before it). A file already announced by "
    "the party under the same `file_name` gets an exact copy of its first answer (nothing while it is "
    "still running); a REJECTED file may come again under its name with another `sha256`.",
    "Flow 3: a refusal's `reason` starts `line N:`; besides the header, count, trailer, checksum and "
    "records, a file is refused for a key (`bank_agreement_no` / `agreement_id`) twice, a CR, an empty "
    "line, no LF after the trailer, a header whose sender, date or scope differs from the announcement, "
    "or no such file in the party's inbound folder (the file, and the folder, must not be a symbolic "
    "link, and the file must be a regular file). The reason names the line and the field, never a value "
    "or the file's checksum. A REJECTED `recon.result` has every class at 0.",
    "Flow 3: one class per record (`STATUS_MISMATCH` before `TERMS_MISMATCH`); terms are user_type, "
    "threshold, amount and auto_pay (an empty auto_pay is N); for a CRM also phone and bank_code.",
    "Flow 3, bank corrections: `MISSING_AT_HUB` records the bank's agreement (province from the segment "
    "table, the card known by its last 4 digits, account_type DEBIT, channel COUNTER); `MISSING_AT_BANK` "
    "cancels an ACTIVE agreement (a DAILY file only for one signed that day); the other classes take the "
    "bank's status and terms. Each is a new `agreement_version`; the bank is not told (it is the truth), "
    "a CRM only through its error-handling file. A cancelled agreement the party never had is no "
    "discrepancy in a MONTHLY file; one held in a manual case is left to the operator; one changed "
    "after the comparison read it is counted but not corrected (the later change wins).",
    "Flow 3: a correction that would give a number a second ACTIVE agreement holds it and opens a case; "
    "its copy on the manual queue has type `recon.file`, `message_id` the case id, body "
    "`{file_name, record, agreement_id}` and header `x-signhub-source: RECONCILIATION`.",
    "Flow 3: a MONTHLY file is compared with the hub as of the end of its business date (Asia/Shanghai): "
    "later changes are rolled back from the agreement history, later agreements left out. In a DAILY file "
    "a record changed in the 10 minutes before midnight that shows on one side only is held and looked at "
    "again with the party's next DAILY file, then called missing.",
    "Flow 3: the error-handling file is `ERR_<file_name>` (cut to 64 characters) in "
    "`<files>/outbound/crm.<PROV>/`, header sender `hub.UPS`, the province file's date and scope; `DELETE` "
    "records carry the CRM's own record with status CANCELLED. `errors.applied` with `failed` 0 marks the "
    "province balanced; one naming no error file sent to that CRM is refused `INVALID_MESSAGE`.",
    "Flow 4 (1.1) is not built yet: `debit.result`, `reverse.result`, `recharge.request`, `credit.result`, "
    "a bank's `recon.file` of scope `DEBITS` and a BOSS's `recon.file` (scope `CREDITS`) are answered "
    "`message.rejected`, `NOT_SUPPORTED`. The hub sends none of flow 4's messages yet.",
    "A `recon.file` whose scope is not its sender kind's (a bank: DAILY, MONTHLY or DEBITS; a CRM: DAILY "
    "or MONTHLY; BOSS: CREDITS) is refused `INVALID_MESSAGE`.",
)

_KIND_PARTIES: Final[dict[PartyKind, str]] = {
    PartyKind.BANK: f"bank abbreviation, e.g. {', '.join(BANKS[:4])}",
    PartyKind.CRM: f"province code (ISO 3166-2:CN without CN-), e.g. {', '.join(PROVINCES[:4])}",
    PartyKind.BOSS: "province code, as for CRMs",
}


def build_document(prefix: str = "signhub") -> dict[str, Any]:
    """The whole AsyncAPI document for a hub whose broker names start with `prefix`."""
    names = Names(prefix)
    schemas: dict[str, JSONObject] = {}
    messages = {_message_key(direction, e): _message(direction, e, schemas) for direction, e in _entries()}
    messages.update(_copy_messages())
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(names),
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": _channels(names),
        "operations": _operations(),
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
        "x-signhub-notes": list(NOTES),
    }


def dump(prefix: str = "signhub") -> str:
    """The document as JSON text, as `signhub asyncapi` prints it."""
    return json.dumps(build_document(prefix), indent=2, ensure_ascii=False)


# --- catalogue walk -----------------------------------------------------------------------


def _entries() -> list[tuple[str, Entry]]:
    return [(INBOUND, e) for e in catalogue.INBOUND] + [(OUTBOUND, e) for e in catalogue.OUTBOUND]


def _message_key(direction: str, entry: Entry) -> str:
    # The same type exists for several kinds (message.rejected, recon.file, unsign.request):
    # direction, kind and type together are unique.
    return f"{direction}.{entry.kind.value}.{entry.type}"


def _ref(*path: str) -> JSONObject:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)}


# --- info and servers ---------------------------------------------------------------------


def _info(names: Names) -> JSONObject:
    description = (
        "The wire contract (version 1.1; `x-schema-version` stays 1) between signhub and banks, "
        "provincial CRMs and BOSS systems. "
        "AMQP 0-9-1 on RabbitMQ 3.10 or newer; every name starts with the hub's prefix "
        f"(`{names.prefix}` here). Parties publish only to the durable topic exchange "
        f"`{names.inbound_exchange}` with routing key `<kind>.<code>.<type>` naming the sender; the hub "
        f"publishes to the durable topic exchange `{names.outbound_exchange}` with the key naming the "
        f"addressee. Each party consumes its durable quorum queue `{names.prefix}.party.<kind>.<code>` "
        "(bound with `<kind>.<code>.#`) with manual acknowledgement. The hub declares the whole "
        "topology at every start. Delivery is at least once, in no guaranteed order: drop repeats by "
        "`message_id`, order changes to one agreement by `agreement_version`. Bodies are UTF-8 JSON "
        "objects; unknown fields are ignored. This document is written from the hub's point of view: "
        "a `receive` operation is a message parties publish to the hub, a `send` operation one the hub "
        "publishes to parties. `x-signhub-notes` lists choices made where the contract is silent."
    )
    return {"title": "signhub", "version": "1.1", "description": description}


def _servers() -> JSONObject:
    return {
        "amqp": {
            "host": "127.0.0.1:5672",
            "protocol": "amqp",
            "protocolVersion": "0.9.1",
            "description": "RabbitMQ of a local or demo deployment; production brokers differ by host only.",
        }
    }


# --- channels -----------------------------------------------------------------------------


def _channels(names: Names) -> JSONObject:
    inbound = _message_refs(INBOUND, catalogue.INBOUND)
    outbound = _message_refs(OUTBOUND, catalogue.OUTBOUND)
    return {
        INBOUND: _exchange_channel(
            names.inbound_exchange, "Parties publish here, and only here; the key names the sender.", inbound
        ),
        OUTBOUND: _exchange_channel(
            names.outbound_exchange, "The hub publishes here; the key names the addressee.", outbound
        ),
        "partyQueue": _party_queue_channel(names, outbound),
        "manual": _queue_channel(
            names.manual_queue,
            "Copies of messages that opened a case for a person; drained only by an operator.",
            {"manual.copy": _ref("components", "messages", "manual.copy")},
        ),
        "dead": _queue_channel(
            names.dead_queue,
            "Copies of messages the hub refused; drained only by an operator.",
            {"dead.copy": _ref("components", "messages", "dead.copy")},
        ),
    }


def _message_refs(direction: str, entries: tuple[Entry, ...]) -> JSONObject:
    return {
        _message_key(direction, e): _ref("components", "messages", _message_key(direction, e))
        for e in entries
    }


def _exchange_channel(name: str, description: str, messages: JSONObject) -> JSONObject:
    exchange = {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    return {
        "address": name,
        "title": name,
        "description": f"Durable topic exchange. {description} Routing key `<kind>.<code>.<type>`.",
        "messages": messages,
        "bindings": {
            "amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP_BINDING_VERSION}
        },
    }


def _queue_binding(name: str) -> JSONObject:
    queue = {"name": name, "durable": True, "exclusive": False, "autoDelete": False, "vhost": "/"}
    return {
        "is": "queue",
        "queue": queue,
        "x-arguments": {"x-queue-type": "quorum"},
        "bindingVersion": AMQP_BINDING_VERSION,
    }


def _queue_channel(name: str, description: str, messages: JSONObject) -> JSONObject:
    # No delivery limit and no TTL: the contract keeps a copy until an operator drains it.
    return {
        "address": name,
        "title": name,
        "description": f"Durable quorum queue, no delivery limit, no message TTL. {description}",
        "messages": messages,
        "bindings": {"amqp": _queue_binding(name)},
    }


def _party_queue_channel(names: Names, messages: JSONObject) -> JSONObject:
    address = f"{names.prefix}.party.{{kind}}.{{code}}"
    binding = _queue_binding(address)
    binding["x-bindings"] = [{"exchange": names.outbound_exchange, "routingKey": "{kind}.{code}.#"}]
    codes = "; ".join(f"{kind.value}: {text}" for kind, text in _KIND_PARTIES.items())
    return {
        "address": address,
        "title": "party queue",
        "description": (
            "One durable quorum queue per registered party, declared by the hub at start-up, bound to "
            f"`{names.outbound_exchange}` with `{{kind}}.{{code}}.#`. The party consumes it with manual "
            "acknowledgement and receives every outbound message addressed to it."
        ),
        "parameters": {
            "kind": {"enum": [k.value for k in PartyKind], "description": "party kind"},
            "code": {"description": f"party code; {codes}", "examples": [BANKS[0], PROVINCES[18]]},
        },
        "messages": messages,
        "bindings": {"amqp": binding},
    }


# --- messages -----------------------------------------------------------------------------


def _message(direction: str, entry: Entry, schemas: dict[str, JSONObject]) -> JSONObject:
    routing_key = f"{entry.kind.value}.{{code}}.{entry.type}"
    whose = "the sender's" if direction == INBOUND else "the addressee's"
    return {
        "name": f"{entry.kind.value}.{entry.type}",
        "title": entry.type,
        "summary": entry.summary,
        "description": (
            f"`{entry.type}` {'from' if direction == INBOUND else 'to'} a {entry.kind.value} party on "
            f"the {direction} exchange; routing key `{routing_key}` with {whose} code."
        ),
        "contentType": CONTENT_TYPE,
        "headers": _headers_schema(direction),
        "payload": _payload(entry, schemas),
        "bindings": {"amqp": _message_binding(direction, entry.type)},
        "x-direction": direction,
        "x-party-kind": entry.kind.value,
        "x-routing-key": routing_key,
    }


def _payload(entry: Entry, schemas: dict[str, JSONObject]) -> JSONObject:
    # Annotated on purpose: Entry's field named `type` shadows the builtin in its own annotations.
    model: type[Message] = entry.model
    schema: JSONObject = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        _collect(schemas, name, definition)
    return schema


def _collect(schemas: dict[str, JSONObject], name: str, definition: JSONObject) -> None:
    # Shared enums (ReasonCode, Channel, ...) appear in many models; one name must mean one schema.
    known = schemas.setdefault(name, definition)
    if known != definition:
        raise ValueError(f"two different schemas are both named {name!r}")


def _headers_schema(direction: str) -> JSONObject:
    version = {
        "description": (
            f"schema version of the body; the hub reads a missing header as {SCHEMA_VERSION}"
            if direction == INBOUND
            else "schema version of the body"
        ),
        "oneOf": [
            {"type": "integer", "const": SCHEMA_VERSION},
            {"type": "string", "const": str(SCHEMA_VERSION)},
        ],
    }
    schema: JSONObject = {
        "type": "object",
        "description": "AMQP headers table; the envelope's properties are in bindings.amqp.x-properties.",
        "properties": {H_SCHEMA_VERSION: version},
    }
    if direction == OUTBOUND:
        schema["required"] = [H_SCHEMA_VERSION]
    return schema


def _message_binding(direction: str, msg_type: str) -> JSONObject:
    return {
        "messageType": msg_type,
        "x-properties": _properties_schema(direction, msg_type),
        "bindingVersion": AMQP_BINDING_VERSION,
    }


def _properties_schema(direction: str, msg_type: str) -> JSONObject:
    """The AMQP basic properties of the envelope (CONTRACT.md, "Envelope"), as a JSON schema."""
    inbound = direction == INBOUND
    properties: JSONObject = {
        "message_id": {
            "type": "string",
            "pattern": r"^[\x20-\x7e]{1,64}$",
            "description": (
                "idempotency key, unique per sender: one effect per (sender, message_id) for at least "
                "7 days; a refused message may be re-sent corrected under the same message_id"
                if inbound
                else "unique per hub message; a repeated answer keeps the first answer's message_id"
            ),
        },
        "correlation_id": {
            "type": "string",
            "description": (
                "not used by the hub"
                if inbound
                else "on a message that answers a party's message: that message's message_id"
            ),
        },
        "type": {"const": msg_type, "description": "must equal the routing key's type"},
        "content_type": {"const": CONTENT_TYPE, "description": "UTF-8 JSON"},
        "timestamp": {
            "type": "integer",
            "description": "when sent (AMQP timestamp, seconds since the epoch)",
        },
        "user_id": {
            "type": "string",
            "description": (
                "with per-party broker users: the party's broker user name; the hub refuses a message "
                "whose user is not the party of its routing key (UNAUTHORIZED_SENDER)"
                if inbound
                else "the hub's broker user, when the broker runs with per-party users"
            ),
        },
    }
    required = ["message_id", "type"] if inbound else ["message_id", "type", "content_type", "timestamp"]
    return {"type": "object", "properties": properties, "required": required}


def _copy_messages() -> JSONObject:
    return {
        "manual.copy": _copy_message(
            "manual.copy", "a copy of the message that opened a case", with_case=True
        ),
        "dead.copy": _copy_message("dead.copy", "a copy of a message the hub refused", with_case=False),
    }


def _copy_message(name: str, summary: str, *, with_case: bool) -> JSONObject:
    text = {"type": "string"}
    headers: JSONObject = {
        H_REASON: {"type": "string", "enum": [r.value for r in QueueReason]},
        H_ERROR: {**text, "description": "a readable explanation"},
        H_SENDER: {**text, "description": "the sender as <kind>.<code>"},
        H_ROUTING_KEY: {**text, "description": "the routing key the message arrived with"},
    }
    required = [H_REASON, H_ERROR, H_SENDER, H_ROUTING_KEY]
    if with_case:
        headers[H_CASE_ID] = {**text, "description": "the case this copy belongs to"}
        headers[H_EXISTING_AGREEMENT_ID] = {**text, "description": "the ACTIVE agreement it collides with"}
        headers[H_SOURCE] = {**text, "description": "RECONCILIATION when a reconciliation opened the case"}
        required += [H_CASE_ID, H_EXISTING_AGREEMENT_ID]
    else:
        count = {"type": "integer", "minimum": 0}
        headers[H_BODY_LENGTH] = {**count, "description": "set when the body was cut: its length in bytes"}
        headers[H_BODY_KEPT] = {**count, "description": "set when the body was cut: the bytes kept, from its start"}
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "description": (
            "Keeps the original message_id, type and body, with account_no masked to its first 6 and "
            "last 4 digits and id_no to its last 4 characters, and any card or ID number in the "
            "message_id, type or routing key masked. Of a body over the size limit only the first "
            "4096 bytes are kept. The store keeps the original (as far as it was kept)."
        ),
        "headers": {"type": "object", "properties": headers, "required": required},
        "payload": {"description": "the original body as received (a refused one may not be JSON)"},
    }


# --- operations ---------------------------------------------------------------------------


def _operations() -> JSONObject:
    operations: JSONObject = {}
    for direction, entry in _entries():
        action = "receive" if direction == INBOUND else "send"
        operations[f"{action}.{entry.kind.value}.{entry.type}"] = _operation(action, direction, entry)
    for queue in ("manual", "dead"):
        operations[f"send.{queue}.copy"] = {
            "action": "send",
            "channel": _ref("channels", queue),
            "summary": f"the hub puts a copy on the {queue} queue (default exchange, key = queue name)",
            "messages": [_ref("channels", queue, "messages", f"{queue}.copy")],
        }
    return operations


def _operation(action: str, direction: str, entry: Entry) -> JSONObject:
    key = _message_key(direction, entry)
    routing_key = f"{entry.kind.value}.{{code}}.{entry.type}"
    who = f"a {entry.kind.value} party publishes" if action == "receive" else "the hub publishes"
    operation: JSONObject = {
        "action": action,
        "channel": _ref("channels", direction),
        "summary": f"{who} {entry.type}: {entry.summary}",
        "messages": [_ref("channels", direction, "messages", key)],
    }
    if action == "send":
        operation["bindings"] = {"amqp": {"cc": [routing_key], "bindingVersion": AMQP_BINDING_VERSION}}
    return operation
