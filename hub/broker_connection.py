"""How the hub reaches RabbitMQ: its connections are made here, over TLS for an amqps:// URL.

Banks and provinces reach the hub across networks, so the broker may listen with TLS only and ask
every client for a certificate. `SIGNHUB_AMQP_CA` is the CA that signed the broker's certificate
(the system's CAs when unset); `SIGNHUB_AMQP_CERT` and `SIGNHUB_AMQP_KEY` are the hub's own
certificate. The hub's aio-pika connection, its FastStream broker, the operations console and the
demo all connect through here, so one setting changes every one of them.
"""

from __future__ import annotations

import ssl

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import AMQPConnectionError
from faststream.rabbit import RabbitBroker
from faststream.security import BaseSecurity
from yarl import URL

from hub.settings import Settings, SettingsError


class BrokerUnreachable(ConnectionError):
    """The broker could not be reached or refused the hub; the message says where, and a likely why."""


def uses_tls(settings: Settings) -> bool:
    return settings.amqp_url.get_secret_value().lower().startswith("amqps://")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """None for amqp://; for amqps:// a context that checks the broker's certificate and name
    against `SIGNHUB_AMQP_CA` (or the system's CAs) and shows the hub's client certificate, if set."""
    if not uses_tls(settings):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.amqp_ca)
    except ssl.SSLError as exc:
        raise SettingsError(f"SIGNHUB_AMQP_CA={str(settings.amqp_ca)!r}: not a PEM CA certificate: {exc}") from None
    if settings.amqp_cert is not None and settings.amqp_key is not None:
        try:
            context.load_cert_chain(settings.amqp_cert, settings.amqp_key)
        except ssl.SSLError as exc:
            raise SettingsError(
                f"SIGNHUB_AMQP_CERT={str(settings.amqp_cert)!r}, SIGNHUB_AMQP_KEY={str(settings.amqp_key)!r}: "
                f"not a PEM certificate and its key: {exc}"
            ) from None
    return context


async def connect_broker(settings: Settings) -> AbstractRobustConnection:
    """The hub's aio-pika connection, tried again every `SIGNHUB_BROKER_RECONNECT_S` once it is lost
    (aio-pika does that); a first connection that fails raises `BrokerUnreachable`."""
    url = settings.amqp_url.get_secret_value()
    context = tls_context(settings)
    try:
        return await aio_pika.connect_robust(url, reconnect_interval=settings.broker_reconnect_s,
                                             ssl_context=context)  # fmt: skip
    except (AMQPConnectionError, OSError) as exc:
        raise BrokerUnreachable(_unreachable(settings, exc)) from exc


def rabbit_broker(settings: Settings) -> RabbitBroker:
    """The hub's FastStream broker, on the same URL and TLS settings as `connect_broker`."""
    context = tls_context(settings)
    return RabbitBroker(settings.amqp_url.get_secret_value(), logger=None,
                        reconnect_interval=settings.broker_reconnect_s,
                        security=BaseSecurity(ssl_context=context) if context else None)  # fmt: skip


def url_with_tls_files(settings: Settings) -> str:
    """The URL with the TLS files as aiormq's `cafile`, `certfile` and `keyfile` query parameters,
    for code that takes a URL and nothing else (`delete_topology`, the simulated parties)."""
    url = settings.amqp_url.get_secret_value()
    if not uses_tls(settings):
        return url
    files = {"cafile": settings.amqp_ca, "certfile": settings.amqp_cert, "keyfile": settings.amqp_key}
    return str(URL(url).update_query({name: str(path) for name, path in files.items() if path is not None}))


def _unreachable(settings: Settings, exc: BaseException) -> str:
    where = URL(settings.amqp_url.get_secret_value()).with_user(None)  # no password in a message
    said = f"{exc.args[-1]}" if exc.args else repr(exc)
    if "CERTIFICATE_VERIFY_FAILED" in said:
        ca = settings.amqp_ca or "not set, the system's CAs"
        why = f"the broker's certificate is not trusted for this address (SIGNHUB_AMQP_CA: {ca})"
    elif uses_tls(settings) and settings.amqp_cert is None:
        # TLS 1.3: the handshake completes on the client's side before the broker checks for a
        # certificate, so a broker that requires one shows up as a bare "connection reset".
        why = ("SIGNHUB_AMQP_CERT and SIGNHUB_AMQP_KEY are not set: a broker that requires a client"
               " certificate refuses the hub")
    else:
        why = "the broker is down, the address is wrong, or it refused the hub"
    return f"cannot connect to the broker at {where}: {said} ({why})"
