"""Protection of personal numbers at rest (hub/protection.py): encryption, fingerprints, keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.protection import DataProtector, load_or_create_key
from tests.support.data import CARD

KEY_A = Fernet.generate_key()
KEY_B = Fernet.generate_key()


def test_an_encrypted_number_decrypts_to_itself_and_is_not_readable_in_the_token() -> None:
    p = DataProtector([KEY_A])

    token = p.encrypt(CARD)

    assert CARD not in token and CARD[-8:] not in token
    assert p.decrypt(token) == CARD.encode()
    assert p.decrypt(p.encrypt(CARD.encode())) == CARD.encode(), "bytes are taken as well as text"


def test_two_encryptions_of_one_number_differ_so_tokens_cannot_be_compared() -> None:
    p = DataProtector([KEY_A])

    assert p.encrypt(CARD) != p.encrypt(CARD)


def test_a_token_from_another_key_is_refused_with_a_value_error_that_names_no_secret() -> None:
    token = DataProtector([KEY_B]).encrypt(CARD)

    with pytest.raises(ValueError, match="cannot be decrypted") as raised:
        DataProtector([KEY_A]).decrypt(token)

    assert KEY_A.decode() not in str(raised.value) and CARD not in str(raised.value)


def test_a_fingerprint_is_stable_for_one_key_and_differs_between_numbers() -> None:
    assert DataProtector([KEY_A]).fingerprint(CARD) == DataProtector([KEY_A]).fingerprint(CARD)
    assert DataProtector([KEY_A]).fingerprint(CARD) != DataProtector([KEY_A]).fingerprint(CARD[:-1] + "6")


def test_a_fingerprint_is_keyed_so_two_keys_give_two_fingerprints_and_neither_shows_the_number() -> None:
    fp_a, fp_b = DataProtector([KEY_A]).fingerprint(CARD), DataProtector([KEY_B]).fingerprint(CARD)

    assert fp_a != fp_b
    assert CARD not in fp_a and len(fp_a) == 64


def test_after_a_rotation_the_new_key_encrypts_and_old_tokens_still_decrypt() -> None:
    old_token = DataProtector([KEY_A]).encrypt(CARD)
    rotated = DataProtector([KEY_B, KEY_A])

    new_token = rotated.encrypt(CARD)

    assert rotated.decrypt(old_token) == CARD.encode()
    assert DataProtector([KEY_B]).decrypt(new_token) == CARD.encode(), "the first key must encrypt"
    with pytest.raises(ValueError):
        DataProtector([KEY_A]).decrypt(new_token)


def test_a_key_rotation_does_not_change_the_fingerprints_stored_before_it() -> None:
    before = DataProtector([KEY_A]).fingerprint(CARD)

    assert DataProtector([KEY_B, KEY_A]).fingerprint(CARD) == before


def test_a_protector_needs_at_least_one_key() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DataProtector([])


def test_without_a_configured_key_one_is_created_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "hub.key"

    keys, created = load_or_create_key(None, key_file)

    assert created is True and len(keys) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() == keys[0]
    assert DataProtector(keys).decrypt(DataProtector(keys).encrypt(CARD)) == CARD.encode()

    again, created_again = load_or_create_key(None, key_file)

    assert created_again is False and again == keys


def test_a_configured_key_list_is_used_newest_first_and_no_key_file_is_made(tmp_path: Path) -> None:
    key_file = tmp_path / "hub.key"

    keys, created = load_or_create_key(f" {KEY_B.decode()} , {KEY_A.decode()},", key_file)

    assert (keys, created) == ([KEY_B, KEY_A], False)
    assert not key_file.exists()


@pytest.mark.parametrize("configured", ["not-a-key", "c2hvcnQ=", KEY_A.decode() + ",broken"])
def test_a_malformed_configured_key_is_refused_without_showing_it(tmp_path: Path, configured: str) -> None:
    with pytest.raises(ValueError) as raised:
        load_or_create_key(configured, tmp_path / "hub.key")

    assert "not-a-key" not in str(raised.value) and "broken" not in str(raised.value)
    assert not (tmp_path / "hub.key").exists()
