# A slim image that runs `python -m bot` as a non-root user, with the database on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# A font with Chinese glyphs, so that charts (matplotlib) can be labelled in Chinese.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
# The pinned versions first (requirements.lock, from `pip-compile`), so the image installs exactly
# what the tests ran with; then the bot itself without resolving anything again.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY composition_root ./composition_root
# The database stays at the default relative path, `sqlite+aiosqlite:///data/bot.db`, which is what
# `.env` says too: run from /app it is /app/data/bot.db, the volume, owned by the non-root user.
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 kimi \
    && mkdir -p /app/data && chown kimi:kimi /app/data

USER kimi
VOLUME ["/app/data"]
# SIGTERM ends the bot cleanly: no new updates, running answers get SHUTDOWN_GRACE_SECONDS (3) to
# finish, the rest are ended with a notice, and the process exits 0 within 8 s, inside `docker
# stop`'s default 10 s (compose: keep stop_grace_period at 10s or more).
STOPSIGNAL SIGTERM
ENV SHUTDOWN_GRACE_SECONDS=3
CMD ["python", "-m", "bot"]
