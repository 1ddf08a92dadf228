"""The hub's settings (hub/settings.py): the documented defaults, the environment, and loud errors.

Tests set `SIGNHUB_*` variables with monkeypatch (that is the environment the hub reads, not a
patch of hub code) and clear any the developer's shell may have set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.routing import PROVINCES
from hub.settings import SettingsError, load_settings

ALL_31_PROVINCES = [
    "BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL", "SH", "JS", "ZJ", "AH", "FJ", "JX", "SD", "HA",
    "HB", "HN", "GD", "GX", "HI", "CQ", "SC", "GZ", "YN", "XZ", "SN", "GS", "QH", "NX", "XJ",
]  # fmt: skip
USUAL_BANKS = ["ICBC", "ABC", "BOC", "CCB", "BOCOM", "CMB", "PSBC", "CITIC", "CEB", "CMBC", "SPDB", "CIB"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("SIGNHUB_"):
            monkeypatch.delenv(key)


def test_the_defaults_are_the_documented_ones() -> None:
    s = load_settings()

    assert s.amqp_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert s.prefix == "signhub"
    assert s.store == "./signhub.db"
    assert s.crm_timeout_s == 30
    assert s.crm_asks == 3
    assert s.retry_delays_s == [1, 5, 30, 120]
    assert s.http_port == 8080
    assert s.approval_window_s == 24 * 3600
    assert s.require_user_id is False
    assert s.data_key is None


def test_the_default_registry_serves_all_31_provinces_and_the_usual_banks() -> None:
    s = load_settings()

    assert len(ALL_31_PROVINCES) == 31
    assert sorted(s.provinces) == sorted(ALL_31_PROVINCES) == sorted(PROVINCES)
    assert set(USUAL_BANKS) <= set(s.banks)


def test_the_amqp_url_is_a_secret_that_does_not_show_in_the_settings_repr() -> None:
    s = load_settings()

    assert "guest:guest" not in repr(s) and "guest:guest" not in str(s.amqp_url)


def test_settings_are_read_from_signhub_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SIGNHUB_AMQP_URL": "amqp://hub:secret@mq.example:5672/prod",
        "SIGNHUB_PREFIX": "hub-a",
        "SIGNHUB_STORE": "/var/lib/signhub/hub.db",
        "SIGNHUB_CRM_TIMEOUT_S": "12.5",
        "SIGNHUB_CRM_ASKS": "5",
        "SIGNHUB_RETRY_DELAYS_S": "0.5, 2,10",
        "SIGNHUB_HTTP_PORT": "9090",
        "SIGNHUB_BANKS": "ICBC,CCB",
        "SIGNHUB_PROVINCES": "GD, BJ",
        "SIGNHUB_REQUIRE_USER_ID": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    s = load_settings()

    assert s.amqp_url.get_secret_value() == "amqp://hub:secret@mq.example:5672/prod"
    assert (s.prefix, s.store) == ("hub-a", "/var/lib/signhub/hub.db")
    assert (s.crm_timeout_s, s.crm_asks, s.http_port) == (12.5, 5, 9090)
    assert s.retry_delays_s == [0.5, 2.0, 10.0]
    assert (s.banks, s.provinces) == (["ICBC", "CCB"], ["GD", "BJ"])
    assert s.require_user_id is True


def test_explicit_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNHUB_CRM_ASKS", "5")

    assert load_settings(crm_asks=2).crm_asks == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SIGNHUB_CRM_ASKS", "x"),
        ("SIGNHUB_CRM_ASKS", "0"),
        ("SIGNHUB_CRM_TIMEOUT_S", "-1"),
        ("SIGNHUB_RETRY_DELAYS_S", "1,-5"),
        ("SIGNHUB_RETRY_DELAYS_S", "1,soon"),
        ("SIGNHUB_RETRY_DELAYS_S", ""),
        ("SIGNHUB_PROVINCES", "ZZ"),
        ("SIGNHUB_PROVINCES", "GD,ZZ"),
        ("SIGNHUB_BANKS", "icbc"),
        ("SIGNHUB_STORE", "mysql://hub@db.example/signhub"),
        ("SIGNHUB_HTTP_PORT", "70000"),
        ("SIGNHUB_PREFIX", "Bad Prefix"),
        ("SIGNHUB_REQUIRE_USER_ID", "maybe"),
    ],
)
def test_a_bad_value_raises_a_settings_error_naming_the_key_and_the_value(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    message = str(raised.value)
    assert key in message, message
    assert repr(value) in message, message


def test_every_bad_key_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNHUB_CRM_ASKS", "x")
    monkeypatch.setenv("SIGNHUB_PROVINCES", "ZZ")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert "SIGNHUB_CRM_ASKS='x'" in str(raised.value) and "SIGNHUB_PROVINCES='ZZ'" in str(raised.value)


def test_an_unknown_province_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNHUB_PROVINCES", "GD,ZZ")

    with pytest.raises(SettingsError, match=r"unknown province codes \['ZZ'\]"):
        load_settings()


def test_a_postgresql_store_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNHUB_STORE", "postgresql://hub@db.example/signhub")
    assert load_settings().store_is_postgres


def test_bank_notice_keys_are_read_as_bank_equals_key_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNHUB_BANK_NOTICE_KEYS", "CCB=ccb-notice-key-0123456789, ICBC=icbc-notice-key-0123456789")
    s = load_settings()
    assert {bank: key.get_secret_value() for bank, key in s.bank_notice_keys.items()} == {
        "CCB": "ccb-notice-key-0123456789", "ICBC": "icbc-notice-key-0123456789"}  # fmt: skip
    assert "notice-key" not in repr(s)


@pytest.mark.parametrize("value", ["CCB=too-short", "ccb=lower-case-bank-0123456789", "CCB"])
def test_a_bad_bank_notice_key_is_named_by_its_setting_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SIGNHUB_BANK_NOTICE_KEYS", value)
    with pytest.raises(SettingsError, match="SIGNHUB_BANK_NOTICE_KEYS=<secret>") as raised:
        load_settings()
    key = value.partition("=")[2]
    assert not key or key not in str(raised.value)


def _pem_files(folder: Path) -> dict[str, str]:
    for name in ("ca.pem", "client.pem", "client.key"):
        (folder / name).write_text("PEM\n")  # only their being there is checked here
    return {"SIGNHUB_AMQP_CA": str(folder / "ca.pem"), "SIGNHUB_AMQP_CERT": str(folder / "client.pem"),
            "SIGNHUB_AMQP_KEY": str(folder / "client.key")}  # fmt: skip


def test_tls_files_are_read_with_an_amqps_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIGNHUB_AMQP_URL", "amqps://hub:secret@broker.example:5671/")
    for key, value in _pem_files(tmp_path).items():
        monkeypatch.setenv(key, value)

    s = load_settings()

    assert (s.amqp_ca, s.amqp_cert, s.amqp_key) == (tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key")


def test_tls_is_off_by_default_and_amqps_needs_no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_settings().amqp_ca, load_settings().amqp_cert, load_settings().amqp_key) == (None, None, None)
    monkeypatch.setenv("SIGNHUB_AMQP_URL", "amqps://hub:secret@broker.example:5671/")
    assert load_settings().amqp_ca is None  # the system's CAs, no client certificate


@pytest.mark.parametrize("given", ["SIGNHUB_AMQP_CERT", "SIGNHUB_AMQP_KEY"])
def test_a_client_certificate_and_its_key_come_together_or_the_error_names_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str
) -> None:
    monkeypatch.setenv("SIGNHUB_AMQP_URL", "amqps://hub:secret@broker.example:5671/")
    monkeypatch.setenv(given, _pem_files(tmp_path)[given])

    with pytest.raises(SettingsError, match=r"SIGNHUB_AMQP_KEY=.*come together: give both or neither"):
        load_settings()


@pytest.mark.parametrize("key", ["SIGNHUB_AMQP_CA", "SIGNHUB_AMQP_CERT", "SIGNHUB_AMQP_KEY"])
def test_a_tls_file_that_is_not_there_is_an_error_naming_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: str
) -> None:
    monkeypatch.setenv("SIGNHUB_AMQP_URL", "amqps://hub:secret@broker.example:5671/")
    for name, value in _pem_files(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(key, str(tmp_path / "missing.pem"))

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert f"{key}='{tmp_path / 'missing.pem'}'" in str(raised.value) and "no such file" in str(raised.value)


def test_tls_files_with_a_plain_amqp_url_are_an_error_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIGNHUB_AMQP_CA", _pem_files(tmp_path)["SIGNHUB_AMQP_CA"])

    with pytest.raises(SettingsError, match=r"SIGNHUB_AMQP_CA=.*only used with an amqps:// SIGNHUB_AMQP_URL"):
        load_settings()
