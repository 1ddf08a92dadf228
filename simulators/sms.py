"""The SMS a provincial CRM sends a subscriber, written as readable lines to a log file.

One line per SMS: `<time, +08:00> <phone> <text>`; the demo shows these files to a person.
"""

from __future__ import annotations

import logging
from pathlib import Path

from simulators.names import bank_name
from simulators.timefmt import now_local

log = logging.getLogger(__name__)

_CANCEL_HINT = "如需取消，请回复QXYD。"


def _yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:.2f}"


def signed_text(
    bank_code: str, last4: str, threshold: int | None, amount: int | None, auto_pay: bool | None
) -> str:
    bank = bank_name(bank_code)
    if amount is not None:
        rule = f"话费余额低于{_yuan(threshold)}元时自动充值{_yuan(amount)}元"
        what = f"话费自动充值业务（银行卡尾号{last4}）：{rule}"
    elif auto_pay:
        what = f"话费自动缴费业务（银行卡尾号{last4}），每月账单将从该卡自动扣缴"
    else:
        what = f"话费代扣业务（银行卡尾号{last4}）"
    return f"【中国移动】尊敬的客户，您已成功签约{bank}{what}。{_CANCEL_HINT}"


def cancelled_text(bank_code: str) -> str:
    return f"【中国移动】尊敬的客户，您的{bank_name(bank_code)}话费自动充值/缴费业务已取消，感谢您的使用。"


def modified_text(bank_code: str, threshold: int | None, amount: int | None, auto_pay: bool | None) -> str:
    if amount is not None:
        terms = f"话费余额低于{_yuan(threshold)}元时自动充值{_yuan(amount)}元"
    else:
        terms = "每月账单自动扣缴" if auto_pay else "不自动缴费"
    return f"【中国移动】尊敬的客户，您的{bank_name(bank_code)}话费业务已变更为：{terms}。{_CANCEL_HINT}"


def reconciled_text(bank_code: str, active: bool) -> str:
    """The notice after reconciliation corrected the subscriber's agreement (flow 3, step 10)."""
    state = "有效" if active else "已取消"
    return (f"【中国移动】尊敬的客户，经与银行核对，您的{bank_name(bank_code)}话费自动充值/缴费签约状态为：{state}。"
            f"{_CANCEL_HINT}")  # fmt: skip


class SmsLog:
    """The SMS one CRM sent: kept in memory and, when a path is given, appended to that file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, phone: str, text: str) -> None:
        line = f"{now_local().isoformat()} {phone} {text}"
        self.lines.append(line)
        log.info("SMS to %s", phone)
        if self.path is not None:
            # One short append per SMS: cheaper than a thread hop, and the file stays line-ordered.
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
