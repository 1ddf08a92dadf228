"""AMQP over TLS (issue 14, item 13): banks and provinces reach the hub across networks, so the hub
connects with amqps://, checks the broker's certificate against `SIGNHUB_AMQP_CA` and shows its
own (`SIGNHUB_AMQP_CERT`, `SIGNHUB_AMQP_KEY`); a broker that requires a client certificate refuses
a hub without one, and the hub says why.

On a RabbitMQ node of this module's own (bench.broker_node) with a TLS listener, and a CA, server
and client certificates made here; the machine's broker is not touched.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.broker_node import BrokerNode, NodeTls, broker_node
from hub.broker_connection import BrokerUnreachable, connect_broker
from hub.settings import Settings, load_settings
from tests.support.data import confirmed, fresh_phone, sign_request, verify_ok_prepaid
from tests.support.hubrun import running_hub
from tests.support.probe import Probe, to
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.broker

CONNECT_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def node(pki: Pki) -> AsyncIterator[BrokerNode]:
    async with broker_node(NodeTls(pki.ca, pki.server.cert, pki.server.key)) as started:
        yield started


def _tls(node: BrokerNode, pki: Pki, *, client_cert: bool = True, ca: bool = True) -> dict[str, Any]:
    assert node.tls_url is not None
    values: dict[str, Any] = {"amqp_url": node.tls_url, "amqp_ca": pki.ca if ca else None}
    if client_cert:
        values |= {"amqp_cert": pki.client.cert, "amqp_key": pki.client.key}
    return values


def _settings(node: BrokerNode, pki: Pki, **tls: bool) -> Settings:
    return load_settings(**_tls(node, pki, **tls))


async def _connections(node: BrokerNode) -> list[dict[str, Any]]:
    out = await node.ctl("list_connections", "ssl", "ssl_protocol", "peer_cert_subject", "--formatter", "json", "-q")
    rows: list[dict[str, Any]] = json.loads(out[out.index("[") :])
    return rows


async def test_the_hub_connects_over_tls_with_its_client_certificate_and_an_invalid_message_is_refused(
    tmp_path: Path, node: BrokerNode, pki: Pki
) -> None:
    async with running_hub(tmp_path, **_tls(node, pki)) as (_hub, probe):
        connections = await _connections(node)
        # The hub's aio-pika connection, its FastStream broker and the probe: all TLS, all with the cert.
        assert len(connections) >= 3, connections
        assert all(c["ssl"] and "CN=signhub-hub" in c["peer_cert_subject"] for c in connections), connections
        assert {c["ssl_protocol"] for c in connections} <= {"tlsv1.3", "tlsv1.2"}, connections

        mid = await probe.publish("bank.ICBC", "sign.request", b"{not json")
        told = await probe.expect(f"message.rejected for {mid}", to("bank.ICBC", "message.rejected", message_id=mid))
        assert told.body["reason_code"] == "INVALID_MESSAGE"


async def test_a_whole_bank_signing_completes_over_tls(tmp_path: Path, node: BrokerNode, pki: Pki) -> None:
    async with running_hub(tmp_path, **_tls(node, pki)) as (_hub, probe):
        await _signs(probe)


async def test_without_a_client_certificate_the_broker_refuses_the_hub_and_the_error_names_the_settings(
    node: BrokerNode, pki: Pki
) -> None:
    settings = _settings(node, pki, client_cert=False)

    with pytest.raises(BrokerUnreachable) as refused:
        await asyncio.wait_for(connect_broker(settings), CONNECT_TIMEOUT_S)

    message = str(refused.value)
    assert "SIGNHUB_AMQP_CERT and SIGNHUB_AMQP_KEY are not set" in message
    assert f"127.0.0.1:{node.tls_port}" in message and "guest" not in message  # where, without the password


async def test_a_hub_that_does_not_trust_the_brokers_ca_refuses_to_connect_naming_the_ca_setting(
    node: BrokerNode, pki: Pki
) -> None:
    settings = _settings(node, pki, ca=False)  # the system's CAs: they never signed the test broker

    with pytest.raises(BrokerUnreachable) as refused:
        await asyncio.wait_for(connect_broker(settings), CONNECT_TIMEOUT_S)

    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) and "SIGNHUB_AMQP_CA" in str(refused.value)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_the_broker_accepts_the_test_certificates_over_tls_1_2_and_1_3(
    node: BrokerNode, pki: Pki, version: ssl.TLSVersion
) -> None:
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(pki.client.cert, pki.client.key)
    context.minimum_version = context.maximum_version = version
    assert node.tls_port is not None

    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", node.tls_port, ssl=context),
                                       CONNECT_TIMEOUT_S)  # fmt: skip
    try:
        assert writer.get_extra_info("ssl_object").version() == version.name.replace("_", ".")  # TLSv1_3 -> TLSv1.3
    finally:
        writer.close()


async def _signs(probe: Probe) -> None:
    """verify.request, approval, sign.result ACTIVE and sign.notify, every hop through the TLS broker."""
    request = sign_request(fresh_phone())
    await probe.publish("bank.ICBC", "sign.request", request)
    ask = await probe.expect("verify.request", to("crm.GD", "verify.request", phone=request["phone"]))
    await probe.publish("crm.GD", "verify.response", verify_ok_prepaid(ask.body["verify_id"]))
    await probe.expect("approval", to("bank.ICBC", "sign.response", request_id=request["request_id"]))
    await probe.publish("bank.ICBC", "sign.confirmed", confirmed(request))
    result = await probe.expect("sign.result", to("bank.ICBC", "sign.result", request_id=request["request_id"]))
    assert result.body["status"] == "ACTIVE"
    await probe.expect("sign.notify", to("crm.GD", "sign.notify", phone=request["phone"]))
