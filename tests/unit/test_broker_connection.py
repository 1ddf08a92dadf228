"""What `hub.broker_connection` makes of the TLS settings, without a broker: the SSL context every
hub connection uses, and the URL for code that takes only a URL (tests/e2e/test_amqp_tls.py
connects for real)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from yarl import URL

from hub.broker_connection import tls_context, url_with_tls_files
from hub.settings import Settings, SettingsError, load_settings
from tests.support.tls import Pki, make_pki

TLS_URL = "amqps://hub:secret@broker.example:5671/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls(pki: Pki) -> Settings:
    return load_settings(amqp_url=TLS_URL, amqp_ca=pki.ca, amqp_cert=pki.client.cert, amqp_key=pki.client.key)


def test_a_plain_amqp_url_gets_no_ssl_context_and_keeps_its_url() -> None:
    s = load_settings(amqp_url="amqp://guest:guest@127.0.0.1:5672/")

    assert tls_context(s) is None
    assert url_with_tls_files(s) == "amqp://guest:guest@127.0.0.1:5672/"


def test_an_amqps_url_gets_a_context_that_checks_the_broker_and_its_name(pki: Pki) -> None:
    context = tls_context(_tls(pki))

    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("organizationName", "signhub tests"),), (("commonName", "signhub test CA"),))
    ]  # only the configured CA, not the system's


def test_the_url_for_url_only_callers_carries_the_tls_files_as_aiormq_reads_them(pki: Pki) -> None:
    url = URL(url_with_tls_files(_tls(pki)))

    assert url.scheme == "amqps" and url.host == "broker.example" and url.port == 5671
    assert dict(url.query) == {"cafile": str(pki.ca), "certfile": str(pki.client.cert), "keyfile": str(pki.client.key)}


def test_a_key_that_is_not_the_certificates_is_a_settings_error_naming_both_keys(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path)
    s = load_settings(amqp_url=TLS_URL, amqp_ca=pki.ca, amqp_cert=pki.client.cert, amqp_key=other.client.key)

    with pytest.raises(SettingsError, match=r"SIGNHUB_AMQP_CERT=.*SIGNHUB_AMQP_KEY=.*not a PEM certificate and its key"):
        tls_context(s)


def test_a_ca_file_that_is_not_pem_is_a_settings_error_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    s = load_settings(amqp_url=TLS_URL, amqp_ca=tmp_path / "ca.pem")

    with pytest.raises(SettingsError, match=r"SIGNHUB_AMQP_CA="):
        tls_context(s)
