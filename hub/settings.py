"""The hub's one settings class: every `SIGNHUB_*` environment variable, typed and checked.

Only `hub.bootstrap` reads it; everything else receives what it needs as parameters. An error
names the key and the bad value, so a wrong deployment fails at start, loudly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.routing import BANKS, PROVINCES


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the key and the value."""


def _pairs(value: Any) -> Any:
    """`name=value,name=value` (a value may contain `=`) as a dict; a dict passes as it is."""
    if not isinstance(value, str):
        return value
    pairs = {}
    for item in _csv(value):
        name, sep, rest = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_*-]{1,32}", name.strip()) or not rest.strip():
            raise ValueError("needs comma-separated name=value pairs")
        pairs[name.strip()] = rest.strip()
    return pairs


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNHUB_", extra="ignore", frozen=True)

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # TLS to the broker (amqps:// only): the CA that signed the broker's certificate (the system's
    # CAs when unset) and the hub's client certificate and key (PEM), for a broker that asks for one.
    amqp_ca: Path | None = None
    amqp_cert: Path | None = None
    amqp_key: Path | None = Field(default=None, validate_default=True)  # unset is checked too: cert needs it
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
    http_max_body: int = Field(default=1 << 20, ge=1024, le=1 << 30)  # bytes of a request body (413 past it)
    banks: Annotated[list[str], NoDecode] = list(BANKS)
    provinces: Annotated[list[str], NoDecode] = list(PROVINCES)
    approval_window_s: float = Field(default=24 * 3600, gt=0)
    prefetch: int = Field(default=64, ge=1, le=10_000)
    # Bounds of the terms a modify.request may set, in fen.
    recharge_threshold_max_fen: int = Field(default=100_000, ge=0)
    recharge_amount_min_fen: int = Field(default=1_000, ge=1)
    recharge_amount_max_fen: int = Field(default=100_000, ge=1)
    # Flow 1, the operator channel: web halls (id=secret, id=base URL), bank signing pages
    # (BANK=URL, `*` for every bank, `{bank}` replaced by the code), banks whose notice to the web
    # hall goes through the hub, the session window, the tokens' lifetime, the hub's public address.
    web_hall_keys: Annotated[dict[str, SecretStr], NoDecode] = {}
    web_hall_urls: Annotated[dict[str, str], NoDecode] = {"web": "http://127.0.0.1:8090"}
    bank_pages: Annotated[dict[str, str], NoDecode] = {"*": "http://127.0.0.1:8091/bank/{bank}/sign"}
    web_notice_via_hub: Annotated[list[str], NoDecode] = ["CCB"]
    # Keys of the banks that notify through the hub (BANK=secret): a notice is taken only with one.
    bank_notice_keys: Annotated[dict[str, SecretStr], NoDecode] = {}
    session_window_s: float = Field(default=1800, gt=0, le=86_400)
    web_token_ttl_s: float = Field(default=300, gt=0, le=3600)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+$")
    # Where the simulated web hall finds the simulated CRMs' HTTP API (`signhub simulate`).
    sim_crm_api_url: str = Field(default="http://127.0.0.1:8092", pattern=r"^https?://[^\s/]+$")
    require_user_id: bool = False
    # Inbox and sent outbox rows are kept this long: the contract's idempotency window is 7 days.
    retention_days: int = Field(default=30, ge=7, le=3650)
    housekeeping_every_s: float = Field(default=3600.0, gt=0)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # The operations console: how long an operator's session lasts, how fast a group action goes.
    ops_session_ttl_s: float = Field(default=8 * 3600, gt=0, le=7 * 86_400)
    ops_group_rate: float = Field(default=5.0, gt=0, le=1000)
    # Its sign-in throttle: failed sign-ins a name, and an address, may have within the window.
    ops_login_failures_per_name: int = Field(default=5, ge=1, le=1000)
    ops_login_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    ops_login_window_s: float = Field(default=900.0, gt=0, le=86_400)
    # Broker trouble (hub.liveness): how soon a lost connection is tried again, how often every
    # part is checked by doing, and how long the process stays up not ready before it exits
    # non-zero for its supervisor to restart it.
    broker_reconnect_s: float = Field(default=1.0, gt=0, le=60)
    # A publish (the relay's, a retry's) the broker has not confirmed by then counts as failed and
    # goes again under the same message_id.
    publish_timeout_s: float = Field(default=10.0, gt=0, le=600)
    watch_every_s: float = Field(default=2.0, gt=0, le=60)
    unready_exit_s: float = Field(default=120.0, gt=0, le=86_400)
    # Fault injection for the crash tests: "after_commit:<type>" or "after_publish:<type>". It lets
    # any party kill the hub, so it needs the second, explicit switch (checked below).
    allow_fault_injection: bool = False
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

    @field_validator("web_hall_keys", "web_hall_urls", "bank_pages", "bank_notice_keys", mode="before")
    @classmethod
    def _pairs(cls, value: Any, info: ValidationInfo) -> Any:
        pairs = _pairs(value)
        keys = info.field_name in ("web_hall_keys", "bank_notice_keys")
        for name, item in pairs.items():
            if info.field_name == "web_hall_keys" and len(item) < 16:
                raise ValueError(f"the key of web hall {name!r} is shorter than 16 characters")
            if info.field_name == "bank_notice_keys" and (len(item) < 16 or not re.fullmatch(r"[A-Z0-9]{2,16}", name)):
                raise ValueError(f"{name!r}: needs BANK=key, a bank code and a key of 16 or more characters")
            if not keys and not re.fullmatch(r"https?://\S+", item):
                raise ValueError(f"{name}: {item!r} is not an http(s) URL")
        return pairs

    @field_validator("web_notice_via_hub", mode="before")
    @classmethod
    def _bank_list(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("amqp_ca", "amqp_cert", "amqp_key")
    @classmethod
    def _tls_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        url = info.data.get("amqp_url")
        if url is not None and not url.get_secret_value().lower().startswith("amqps://"):
            raise ValueError("is only used with an amqps:// SIGNHUB_AMQP_URL")
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("amqp_key")
    @classmethod
    def _cert_with_key(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Skipped when SIGNHUB_AMQP_CERT itself is wrong: its own error says so.
        if "amqp_cert" in info.data and (info.data["amqp_cert"] is None) != (value is None):
            raise ValueError("SIGNHUB_AMQP_CERT and SIGNHUB_AMQP_KEY come together: give both or neither")
        return value

    @field_validator("fault_crash_at")
    @classmethod
    def _fault_switch(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not info.data.get("allow_fault_injection"):
            raise ValueError("arms fault injection, which lets any party kill the hub: it also needs "
                             "SIGNHUB_ALLOW_FAULT_INJECTION=true (crash tests only)")  # fmt: skip
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if "://" in value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("give a SQLite file path or a postgresql:// URL")
        return value

    @property
    def store_is_postgres(self) -> bool:
        return self.store.startswith(("postgresql://", "postgres://"))


# A bad value of these is named by its key only: the value is a secret.
_SECRET_KEYS = frozenset({"SIGNHUB_WEB_HALL_KEYS", "SIGNHUB_BANK_NOTICE_KEYS"})


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and explicit overrides), or a SettingsError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = "SIGNHUB_" + "_".join(str(p) for p in err["loc"][:1]).upper()
            shown = "<secret>" if key in _SECRET_KEYS else repr(err.get("input"))
            lines.append(f"{key}={shown}: {err['msg']}")
        raise SettingsError("bad configuration: " + "; ".join(lines)) from None
