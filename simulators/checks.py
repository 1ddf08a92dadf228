"""Checksums a real bank runs before it contacts the hub: card numbers (Luhn) and resident ID numbers.

Pure functions, shared by the bank simulator (to refuse locally) and the seed (to make valid data).
"""

from __future__ import annotations

# GB 11643-1999: weights of the first 17 characters, and the check character for (sum mod 11).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    # Walk from the right; `double_first` says whether the rightmost digit given is doubled.
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if (index % 2 == 0) == double_first:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total


def luhn_ok(card: str) -> bool:
    """True when `card` is all digits (at least 2) and its last digit is the Luhn check digit."""
    if len(card) < 2 or not card.isascii() or not card.isdigit():
        return False
    return _luhn_sum(card, double_first=False) % 10 == 0


def luhn_complete(partial: str) -> str:
    """`partial` with its Luhn check digit appended."""
    if not partial or not partial.isascii() or not partial.isdigit():
        raise ValueError(f"not a digit string: {partial!r}")
    check = (10 - _luhn_sum(partial, double_first=True) % 10) % 10
    return partial + str(check)


def _id_check_char(first17: str) -> str:
    total = sum(int(char) * weight for char, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_checksum_ok(id_no: str) -> bool:
    """True for an 18-character resident ID number whose last character is its mod 11-2 check."""
    if len(id_no) != 18 or not id_no.isascii() or not id_no[:17].isdigit():
        return False
    return id_no[17] == _id_check_char(id_no[:17])


def id_complete(first17: str) -> str:
    """The 18-character ID number made of `first17` and its check character (0-9 or X)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("an ID number needs exactly 17 digits before its check character")
    return first17 + _id_check_char(first17)
