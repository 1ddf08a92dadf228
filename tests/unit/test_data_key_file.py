"""Where the hub's data key comes from when SIGNHUB_DATA_KEY is not set: never a file at a path
relative to wherever the process started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.bootstrap import build_protector
from hub.settings import SettingsError, load_settings
from hub.store.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process runs in an empty folder, with none of the developer's SIGNHUB_* variables."""
    for key in list(os.environ):
        if key.upper().startswith("SIGNHUB_"):
            monkeypatch.delenv(key)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "cwd"


async def test_a_postgresql_store_without_a_data_key_refuses_to_start_and_writes_no_key_file(
    elsewhere: Path,
) -> None:
    settings = load_settings(store="postgresql://hub@127.0.0.1:5432/signhub")
    store = await SqliteStore.open(":memory:")  # not read: the key is refused first
    try:
        with pytest.raises(SettingsError, match="SIGNHUB_DATA_KEY"):
            await build_protector(settings, store)
    finally:
        await store.close()
    assert _names(elsewhere) == []


async def test_a_store_in_memory_without_a_data_key_keeps_its_key_in_memory(elsewhere: Path) -> None:
    store = await SqliteStore.open(":memory:")
    try:
        protector = await build_protector(load_settings(store=":memory:"), store)
    finally:
        await store.close()
    assert protector.decrypt(protector.encrypt("6222020200112233445")) == b"6222020200112233445"
    assert _names(elsewhere) == []


async def test_a_sqlite_store_without_a_data_key_keeps_it_beside_the_store(elsewhere: Path) -> None:
    (elsewhere / "data").mkdir()
    store = await SqliteStore.open(elsewhere / "data" / "hub.db")
    try:
        await build_protector(load_settings(store="data/hub.db"), store)
    finally:
        await store.close()
    key = elsewhere / "data" / "hub.key"
    assert key.is_file() and key.stat().st_mode & 0o077 == 0


def _names(folder: Path) -> list[str]:
    return [f.name for f in folder.iterdir()]
