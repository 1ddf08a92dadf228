"""Puts the operations console on the hub's HTTP app: the API (`/api/ops`, with the agreements'
timelines), the pages (`/ops`), `/metrics`, `/readyz` and the contract page, and the console's
security headers. Called by the composition root."""

from __future__ import annotations

from datetime import timedelta

from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI

from hub.console.agreements_api import agreements_router
from hub.console.context import Console
from hub.console.headers import ConsoleHeaders
from hub.console.health import health_router
from hub.console.login_guard import LoginGuard, LoginLimits
from hub.console.ops_api import ops_router
from hub.console.ops_pages import ops_pages
from hub.liveness import Watch
from hub.messaging.topology import HubNames
from hub.services.context import Deps
from hub.settings import Settings
from hub.store.unit_of_work import Store


def mount_console(app: FastAPI, settings: Settings, store: Store, deps: Deps, hub_names: HubNames,
                  connection: AbstractRobustConnection, watch: Watch) -> Console:  # fmt: skip
    limits = LoginLimits(settings.ops_login_failures_per_name, settings.ops_login_failures_per_address,
                         timedelta(seconds=settings.ops_login_window_s))  # fmt: skip
    console = Console(store, deps, hub_names, connection, timedelta(seconds=settings.ops_session_ttl_s),
                      settings.ops_group_rate, login_guard=LoginGuard(limits),
                      public_url=settings.public_url)  # fmt: skip
    app.add_middleware(ConsoleHeaders)
    app.include_router(ops_router(console))
    app.include_router(agreements_router(console))
    app.include_router(ops_pages(console))
    app.include_router(health_router(console, watch, len(settings.retry_delays_s)))
    return console
