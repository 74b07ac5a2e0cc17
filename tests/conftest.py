"""Fixtures shared by the suite: databases (tests/db_fixtures.py) and the fake services."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.kimi import FakeKimi

pytest_plugins = ["tests.db_fixtures"]

KIMI_KEY = "sk-test-secret-key-0123456789"


@pytest.fixture
async def fake_kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KIMI_KEY) as kimi:
        yield kimi
