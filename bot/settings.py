"""Settings from the environment and `.env`, validated once at start-up.

The variable names are a public contract: deployments and users rely on them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class BudgetPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    TOTAL = "total"


class StreamMode(StrEnum):
    AUTO = "auto"
    EDIT = "edit"
    DRAFT = "draft"


class GroupContext(StrEnum):
    PER_USER = "per_user"
    SHARED = "shared"
    PER_TOPIC = "per_topic"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


IdList = Annotated[frozenset[int], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    moonshot_api_key: SecretStr
    moonshot_base_url: str = "https://api.moonshot.cn/v1"
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    default_model: str = "kimi-k2-0905-preview"
    admin_user_ids: IdList = frozenset()
    allowed_user_ids: IdList = frozenset()
    allowed_chat_ids: IdList = frozenset()
    default_budget: Decimal = Field(default=Decimal(1000), ge=0)
    budget_period: BudgetPeriod = BudgetPeriod.MONTHLY
    stream_mode: StreamMode = StreamMode.AUTO
    group_context: GroupContext = GroupContext.PER_USER
    pricing_file: Path | None = None
    log_level: LogLevel = LogLevel.INFO

    system_prompt: str = (
        "You are Kimi, an AI assistant made by Moonshot AI, chatting with people in Telegram. "
        "Answer in the language of the user's message. Be helpful, accurate and concise."
    )
    max_output_tokens: int = Field(default=4096, ge=16)
    # The shortest answer worth starting: a budget remainder that affords fewer output tokens is
    # refused ("budget used up") instead of starting a few-word fragment.
    min_output_tokens: int = Field(default=256, ge=1)
    # Web search (/search on), per turn: the searches run and their result tokens in all; beyond
    # them the round trip stops. Calls per response: the most $web_search calls one response is
    # assumed to carry (Moonshot documents no limit), reserved for the response that asks past the
    # allowance; see bot/search_budget.py.
    web_search_max_calls: int = Field(default=2, ge=1, le=5)
    web_search_max_result_tokens: int = Field(default=16_000, ge=1)
    web_search_max_calls_per_response: int = Field(default=4, ge=1, le=64)
    document_confirm_threshold: Decimal = Field(default=Decimal(20), ge=0)
    # On SIGTERM/SIGINT, running answers get this long to finish before they are interrupted;
    # Docker kills 10 s after SIGTERM, and interrupting and closing take about 2 s more.
    shutdown_grace_seconds: float = Field(default=3.0, ge=0, le=6)
    # Progress updates (drafts, edits) per second shared by all answers streaming at once: each
    # chat gets one a second while few stream, fewer in a burst (handlers/progress_pace.py).
    progress_updates_per_second: float = Field(default=50.0, gt=0, le=1000)

    kimi_connect_timeout: float = Field(default=10.0, gt=0)
    kimi_first_byte_timeout: float = Field(default=120.0, gt=0)
    kimi_idle_timeout: float = Field(default=90.0, gt=0)
    kimi_max_concurrency: int = Field(default=50, ge=1)
    kimi_max_rpm: int = Field(default=200, ge=1)

    # Webhook mode (several replicas behind one URL) instead of polling; see README "Scaling out".
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0:8080"
    metrics_listen: str | None = None  # polling mode: where /healthz and /metrics are served

    @field_validator("admin_user_ids", "allowed_user_ids", "allowed_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",")]
            try:
                return frozenset(int(part) for part in parts if part)
            except ValueError:
                raise ValueError("expected comma-separated integer Telegram ids") from None
        return value

    @field_validator("telegram_bot_token", "moonshot_api_key", mode="before")
    @classmethod
    def _required_not_blank(cls, value: object) -> object:
        # `.env.example` copied as is leaves these blank: that is "missing", not a token.
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; set it in the environment or .env")
        return value

    @field_validator("telegram_webhook_url", "telegram_webhook_secret", "metrics_listen", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        # Any http(s) URL: TLS usually ends at the reverse proxy in front of the replicas.
        if value is not None and (
            not value.strip().startswith(("http://", "https://")) or not urlsplit(value.strip()).hostname
        ):
            raise ValueError("expected an http:// or https:// URL with a host name")
        return value.strip() if value is not None else None

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for secret_token: 1-256 characters, A-Z a-z 0-9 _ and - only.
        if value is not None and not _SECRET_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("expected 1-256 characters: letters, digits, _ and - (Telegram's rule)")
        return value

    @field_validator("webhook_listen", "metrics_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.telegram_webhook_url is not None and self.telegram_webhook_secret is None:
            # Without it anyone who finds the URL could post forged updates.
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_WEBHOOK_URL is set "
                "(1-256 characters: letters, digits, _ and -)"
            )
        return self

    @property
    def webhook_mode(self) -> bool:
        return self.telegram_webhook_url is not None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("budget_period", "stream_mode", "group_context", mode="before")
    @classmethod
    def _lower_choice(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("pricing_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_api_url", "telegram_file_url", "moonshot_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def split_listen(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) as (host, port); ValueError with the reason otherwise."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


class SettingsError(Exception):
    """Start-up configuration is unusable; the message is one line for the operator."""


_REQUIRED = ("TELEGRAM_BOT_TOKEN", "MOONSHOT_API_KEY")


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, naming it and what it accepts; never echoing secrets."""
    missing = sorted(str(issue["loc"][0]).upper() for issue in error.errors() if issue["type"] == "missing")
    if missing:
        return "missing required setting(s): " + ", ".join(missing) + " (set them in the environment or .env)"
    problems = []
    for issue in error.errors():
        name = str(issue["loc"][0]).upper() if issue["loc"] else "settings"
        reason = issue["msg"].removeprefix("Value error, ")
        if issue["type"] == "enum":
            reason = "expected one of: " + str(issue.get("ctx", {}).get("expected", ""))
        problems.append(f"{name}: {reason}" if issue["loc"] else reason)  # a rule across settings names them
    return "invalid setting(s): " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
