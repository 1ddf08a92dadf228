"""What a party sent is shown masked and bounded (issue 14, items 7, 10 and 11), without a broker:
copies never raise on a body nested too deep, an oversize body is cut to a prefix that says how
long it was, card and ID numbers in the names a party chose (routing key, type, message_id) are
masked in copies and logs, and metric labels are only the hub's words."""

from __future__ import annotations

import json
import logging

from contracts import envelope as env
from hub.logging import JsonFormatter
from hub.messaging.copies import KEPT_OF_OVERSIZE, kept_of, masked_body, queue_copy
from hub.metrics import OTHER_TYPE, type_label
from hub.outgoing import Target
from tests.support.data import CARD, ID_NO

DEEP = b'{"request_id": ' + b"[" * 10_000 + b"]" * 10_000 + b', "account_no": "' + CARD.encode() + b'"}'


def test_a_body_nested_ten_thousand_levels_deep_is_copied_masked_as_text_without_raising() -> None:
    copy = masked_body(DEEP)

    assert CARD.encode() not in copy and b"622202*********3445" in copy


def test_a_json_body_with_a_lone_surrogate_is_copied_masked_without_raising() -> None:
    copy = masked_body(b'{"holder_name": "\\ud800", "account_no": "' + CARD.encode() + b'"}')

    assert CARD.encode() not in copy


def test_a_body_within_the_limit_is_kept_whole_and_a_longer_one_cut_to_a_prefix() -> None:
    assert kept_of(b"x" * 100, 100).body == b"x" * 100 and not kept_of(b"x" * 100, 100).cut

    kept = kept_of(b"y" * 10_000_000, 65_536)

    assert kept.cut and kept.body == b"y" * KEPT_OF_OVERSIZE and kept.length == 10_000_000


def _dead_copy(**names: str) -> tuple[str | None, str | None, dict[str, object], bytes]:
    fields = {"message_id": "m-1", "msg_type": "sign.request", "sender": "bank.ICBC",
              "routing_key": "bank.ICBC.sign.request"} | names  # fmt: skip
    copy = queue_copy(Target.DEAD, raw_body=b"{}", reason="INVALID_MESSAGE", error="e", **fields)  # type: ignore[arg-type]
    return copy.message_id, copy.type, copy.headers, copy.body


def test_a_dead_copy_masks_numbers_in_the_message_id_type_sender_and_routing_key() -> None:
    message_id, msg_type, headers, _ = _dead_copy(
        message_id=f"m-{CARD}", msg_type=ID_NO, sender=f"shop.{CARD}", routing_key=f"shop.{CARD}.{ID_NO}"
    )

    shown = json.dumps([message_id, msg_type, headers])
    assert CARD not in shown and ID_NO not in shown
    assert message_id == "m-622202*********3445"
    assert headers[env.H_ROUTING_KEY] == "shop.622202*********3445.**************002X"


def test_a_dead_copy_of_a_cut_body_says_how_long_the_original_was() -> None:
    copy = queue_copy(Target.DEAD, raw_body=b"z" * KEPT_OF_OVERSIZE, message_id="m-1", msg_type="sign.request",
                      sender="bank.ICBC", routing_key="bank.ICBC.sign.request", reason="INVALID_MESSAGE", error="e",
                      original_length=10_000_000)  # fmt: skip

    assert copy.headers[env.H_BODY_LENGTH] == 10_000_000 and copy.headers[env.H_BODY_KEPT] == KEPT_OF_OVERSIZE
    assert env.H_BODY_LENGTH not in _dead_copy()[2], "a whole body says nothing of cutting"


def test_a_log_line_masks_numbers_in_the_ids_it_carries() -> None:
    record = logging.LogRecord("signhub.intake", logging.INFO, __file__, 1, "refused %s", (f"m-{CARD}",), None)
    record.message_id, record.sender, record.msg_type = f"m-{CARD}", f"shop.{CARD}", ID_NO

    line = JsonFormatter().format(record)

    assert CARD not in line and ID_NO not in line
    assert json.loads(line)["message_id"] == "m-622202*********3445"


def test_a_metric_type_label_is_a_catalogue_type_or_other() -> None:
    assert type_label("sign.request") == "sign.request"
    assert {type_label(t) for t in ("made.up", CARD, "", None, "message.rejected")} == {OTHER_TYPE}
