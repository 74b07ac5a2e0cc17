"""Settings of the Kimi client."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KimiConfig:
    # repr=False: a config that ends up in a log line must not carry the key with it.
    api_key: str = field(repr=False)
    # .ai and OpenAI-compatible gateways must work by changing only this.
    base_url: str = "https://api.moonshot.cn/v1"

    connect_timeout: float = 10.0
    # Until the response headers and the first chunk of a stream.
    first_byte_timeout: float = 60.0
    # The longest silence allowed between two chunks of a stream; a stalled stream then ends as
    # incomplete instead of hanging a user's turn.
    idle_timeout: float = 60.0
    # Calls whose answer arrives all at once (non-streamed chat, file upload with extraction):
    # the server is silent until it is done, so they get a longer bound.
    response_timeout: float = 300.0

    # Moonshot's Tier 1 limits; counted over rpm_window seconds.
    max_concurrency: int = 50
    max_rpm: int = 200
    rpm_window: float = 60.0

    # Retries: bounded in total time and in attempts (each retry also counts toward RPM).
    retry_max_total: float = 60.0
    retry_max_attempts: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 20.0

    models_refresh: float = 3600.0
