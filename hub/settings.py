"""The hub's one settings class: every `SIGNHUB_*` environment variable, typed and checked.

Only `hub.bootstrap` reads it; everything else receives what it needs as parameters. An error
names the key and the bad value, so a wrong deployment fails at start, loudly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.routing import BANKS, PROVINCES


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the key and the value."""


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNHUB_", extra="ignore", frozen=True)

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    prefix: str = Field(default="signhub", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    store: str = "./signhub.db"
    segments: Path | None = None
    segment_overrides: Path | None = None
    files: Path = Path("./signhub-files")
    crm_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    crm_asks: int = Field(default=3, ge=1, le=20)
    retry_delays_s: Annotated[list[float], NoDecode] = [1.0, 5.0, 30.0, 120.0]
    data_key: SecretStr | None = None
    http_port: int = Field(default=8080, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    banks: Annotated[list[str], NoDecode] = list(BANKS)
    provinces: Annotated[list[str], NoDecode] = list(PROVINCES)
    approval_window_s: float = Field(default=24 * 3600, gt=0)
    prefetch: int = Field(default=64, ge=1, le=10_000)
    # Bounds of the terms a modify.request may set, in fen.
    recharge_threshold_max_fen: int = Field(default=100_000, ge=0)
    recharge_amount_min_fen: int = Field(default=1_000, ge=1)
    recharge_amount_max_fen: int = Field(default=100_000, ge=1)
    require_user_id: bool = False
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Fault injection for the crash tests: "after_commit:<type>" or "after_publish:<type>".
    fault_crash_at: str | None = Field(default=None, pattern=r"^(after_commit|after_publish):[a-z.]+$")

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _delays(cls, value: Any) -> Any:
        delays = [float(v) for v in _csv(value)]
        if not delays or any(d <= 0 or d > 86_400 for d in delays):
            raise ValueError("needs 1 or more delays, each > 0 and <= 86400 seconds")
        return delays

    @field_validator("banks", "provinces", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        codes = _csv(value)
        if not codes or any(not re.fullmatch(r"[A-Z0-9]{2,16}", c) for c in codes):
            raise ValueError("needs a comma-separated list of upper-case party codes")
        return codes

    @field_validator("provinces")
    @classmethod
    def _known_provinces(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PROVINCES))
        if unknown:
            raise ValueError(f"unknown province codes {unknown}")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            raise ValueError("PostgreSQL is not supported yet; give a SQLite file path")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and explicit overrides), or a SettingsError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = "SIGNHUB_" + "_".join(str(p) for p in err["loc"][:1]).upper()
            lines.append(f"{key}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("bad configuration: " + "; ".join(lines)) from None
