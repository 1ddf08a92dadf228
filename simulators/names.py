"""Realistic-looking raw material for generated data: card BINs, bank names, people's names, areas.

Kept apart from `seed` so the tables do not hide the generation logic.
"""

from __future__ import annotations

import random

from contracts.common import AccountType

# (debit BIN, debit length, credit BIN, credit length), as printed on the banks' cards.
_BINS: dict[str, tuple[str, int, str, int]] = {
    "ICBC": ("622202", 19, "625330", 16),
    "ABC": ("622848", 19, "622836", 16),
    "BOC": ("621661", 19, "625907", 16),
    "CCB": ("621700", 19, "552801", 16),
    "BOCOM": ("622262", 19, "521899", 16),
    "CMB": ("621483", 16, "439225", 16),
    "PSBC": ("621799", 19, "625919", 16),
    "CITIC": ("622690", 16, "433670", 16),
    "CEB": ("622660", 16, "406254", 16),
    "CMBC": ("622615", 16, "415599", 16),
    "SPDB": ("622521", 16, "622516", 16),
    "CIB": ("622909", 18, "438588", 16),
}
_GENERIC_BIN = ("621999", 19, "625999", 16)

BANK_NAMES: dict[str, str] = {
    "ICBC": "中国工商银行",
    "ABC": "中国农业银行",
    "BOC": "中国银行",
    "CCB": "中国建设银行",
    "BOCOM": "交通银行",
    "CMB": "招商银行",
    "PSBC": "中国邮政储蓄银行",
    "CITIC": "中信银行",
    "CEB": "中国光大银行",
    "CMBC": "中国民生银行",
    "SPDB": "上海浦东发展银行",
    "CIB": "兴业银行",
}

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余"
    "于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
    "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛")
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红玲芬燕彬鹏辉斌宇浩凯健俊帆"
    "帅旭宁龙林欣怡佳琪梓涵轩诺桐晨曦"
)
_MINORITY_PARTS = (
    "买买提", "艾力", "阿不都", "热合曼", "吐尔逊", "古丽", "阿依古丽", "迪丽拜尔",
    "艾尔肯", "努尔", "帕提古丽", "依明", "米吉提", "阿依努尔", "哈斯木", "巴合提",
)  # fmt: skip

# Administrative-division codes that start an ID number (Beijing, Shanghai, Guangzhou, ...).
AREAS: tuple[str, ...] = (
    "110105", "110108", "310115", "310104", "440106", "440305", "320102", "330106",
    "510107", "420106", "370102", "610113", "500103", "430104", "350203", "210102",
)  # fmt: skip
# Urumqi and Kashgar: where most holders of dotted names were registered.
MINORITY_AREAS: tuple[str, ...] = ("650102", "650104", "653101")


def card_bin(bank: str, account_type: AccountType) -> tuple[str, int]:
    """(BIN, total card length) for a bank's debit or credit cards."""
    debit_bin, debit_len, credit_bin, credit_len = _BINS.get(bank, _GENERIC_BIN)
    if account_type is AccountType.CREDIT:
        return credit_bin, credit_len
    return debit_bin, debit_len


def bank_name(bank: str) -> str:
    return BANK_NAMES.get(bank, bank)


def han_name(rng: random.Random) -> str:
    surname = rng.choice(_SURNAMES) if rng.random() < 0.97 else rng.choice(_COMPOUND_SURNAMES)
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return surname + given


def minority_name(rng: random.Random) -> str:
    """A Uyghur-style name: given name and father's name joined by the middle dot."""
    first, second = rng.sample(_MINORITY_PARTS, 2)
    return f"{first}·{second}"
