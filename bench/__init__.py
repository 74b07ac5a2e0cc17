"""Benchmarks: speed and memory numbers for the README, never timed assertions in tests.

Each module runs on its own and prints a short table (see README.md, "Benchmarks"):

    .venv/bin/python -m bench.render       # Markdown rendering cost while streaming
    .venv/bin/python -m bench.budget       # atomic budget reservations, SQLite and PostgreSQL
    .venv/bin/python -m bench.stream_e2e   # the whole bot against the fake Telegram and Kimi

Everything stays on 127.0.0.1 and each run ends within a minute.
"""
