"""Serves the simulated web sites of flow 1 beside the broker parties: the web hall, every bank's
signing page and the CRMs' HTTP API, each on the address the configuration gives it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from simulators.bank_pages import BankPages, bank_pages_app
from simulators.crm_api import crm_api
from simulators.seed import SegmentLookup
from simulators.web_hall import HallConfig, WebHall, web_hall_app

if TYPE_CHECKING:
    from simulators.fleet import Simulators

log = logging.getLogger(__name__)
_START_WAIT_S = 10.0


class WebSettings(Protocol):
    """What the web sites read of the hub's settings (the addresses both sides agree on)."""

    @property
    def web_hall_keys(self) -> Mapping[str, SecretStr]: ...
    @property
    def web_hall_urls(self) -> Mapping[str, str]: ...
    @property
    def bank_notice_keys(self) -> Mapping[str, SecretStr]: ...
    @property
    def bank_pages(self) -> Mapping[str, str]: ...
    @property
    def public_url(self) -> str | None: ...
    @property
    def http_host(self) -> str: ...
    @property
    def http_port(self) -> int: ...
    @property
    def sim_crm_api_url(self) -> str: ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Addresses:
    hub: str
    hall: HallConfig | None
    bank_site: str  # scheme://host:port serving /bank/<code>/sign
    crm_api: str
    bank_keys: Mapping[str, str] = field(default_factory=dict)  # bank -> key of its notices to the hub


def addresses(settings: WebSettings, banks: tuple[str, ...]) -> Addresses:
    hub = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    hall = next(((n, k) for n, k in settings.web_hall_keys.items() if n in settings.web_hall_urls), None)
    config = None
    if hall is not None:
        name, key = hall
        config = HallConfig(name, key.get_secret_value(), settings.web_hall_urls[name].rstrip("/"), hub,
                            settings.sim_crm_api_url, banks)  # fmt: skip
    page = settings.bank_pages.get("*") or next(iter(settings.bank_pages.values()))
    parts = urlsplit(page)
    bank_keys = {bank: key.get_secret_value() for bank, key in settings.bank_notice_keys.items()}
    return Addresses(hub, config, f"{parts.scheme}://{parts.netloc}", settings.sim_crm_api_url, bank_keys)


@dataclass(slots=True)
class WebSites:
    addresses: Addresses
    hall: WebHall | None
    bank_pages: BankPages
    servers: list[uvicorn.Server] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _serve(sites: WebSites, app: FastAPI, url: str) -> None:
    parts = urlsplit(url)
    config = uvicorn.Config(app, host=parts.hostname or "127.0.0.1", port=parts.port or 80, log_level="warning",
                            lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    sites.servers.append(server)
    sites.tasks.append(asyncio.create_task(server.serve(), name=f"site {url}"))
    async with asyncio.timeout(_START_WAIT_S):
        while not server.started:  # uvicorn offers no event for "listening"
            if sites.tasks[-1].done():
                raise RuntimeError(f"the site {url} did not start (is the port taken?)")
            await asyncio.sleep(0.02)


async def serve_web_sites(sims: Simulators, addr: Addresses, segments: SegmentLookup) -> WebSites:
    """Starts the three sites; the web hall only when a web hall has both a key and an address."""
    hall = WebHall(addr.hall, segments) if addr.hall is not None else None
    sites = WebSites(addr, hall, BankPages(sims.banks, addr.hub, addr.bank_keys))
    try:
        await _serve(sites, bank_pages_app(sites.bank_pages), addr.bank_site)
        await _serve(sites, crm_api(sims.crms), addr.crm_api)
        if hall is not None:
            await _serve(sites, web_hall_app(hall), hall.config.base_url)
        else:
            log.warning(
                "no web hall served: SIGNHUB_WEB_HALL_KEYS has no hall named in SIGNHUB_WEB_HALL_URLS"
            )
    except BaseException:
        await sites.stop()
        raise
    return sites
