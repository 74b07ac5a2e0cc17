# A slim image that runs `python -m bot` as a non-root user, with the database on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/bot.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip install --no-cache-dir ".[postgres]" \
    && useradd --create-home --uid 10001 kimi \
    && mkdir -p /data && chown kimi:kimi /data

USER kimi
VOLUME ["/data"]
CMD ["python", "-m", "bot"]
