"""Shared fixtures: a real hub per test module on the real broker, and the probe party."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.bootstrap import Hub
from tests.support.hubrun import running_hub
from tests.support.probe import Probe


@pytest.fixture(scope="module")
async def hub_and_probe(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    async with running_hub(Path(tmp_path_factory.mktemp("hub"))) as pair:
        yield pair


@pytest.fixture
def hub(hub_and_probe: tuple[Hub, Probe]) -> Hub:
    return hub_and_probe[0]


@pytest.fixture
def probe(hub_and_probe: tuple[Hub, Probe]) -> Probe:
    return hub_and_probe[1]
