"""What a bank checks on its signing page before it signs (DOMAIN.md flow 1 step 5), as a pure
function: the card's check digit, the ID checksum, that the account is ours and the holder's,
in normal status, and with online banking open (this bank's rule for signing on the web)."""

from __future__ import annotations

from collections.abc import Iterable

from simulators.checks import id_checksum_ok, luhn_ok
from simulators.seed import Account, AccountStatus


def page_refusal(card_no: str, holder_name: str, id_no: str, accounts: Iterable[Account]) -> str | None:
    """Why the bank refuses the form, in the words its page shows (Chinese), or None."""
    card_no, id_no = card_no.replace(" ", ""), id_no.strip().upper()
    if not luhn_ok(card_no) or not 12 <= len(card_no) <= 19:
        return "银行卡号有误：校验位不正确"
    if not id_checksum_ok(id_no):
        return "身份证号码有误：校验码不正确"
    account = next((a for a in accounts if a.account_no == card_no), None)
    if account is None or account.id_no != id_no or account.holder_name != holder_name.strip():
        return "账户不存在，或户名、证件号码与开户信息不符"
    if account.status is not AccountStatus.NORMAL:
        return "账户状态异常（已冻结），不能签约"
    if not account.online_banking:
        return "该账户未开通网上银行，不能在线签约"
    return None


def account_of(card_no: str, accounts: Iterable[Account]) -> Account:
    return next(a for a in accounts if a.account_no == card_no.replace(" ", ""))
