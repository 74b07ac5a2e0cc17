"""`python -m storage.migrations`: the child process of Store.start(migrate_apart=True).

A module of its own, not `python -m storage.migrate`: the storage package imports storage.migrate
before runpy would run it as __main__, which made Python warn (RuntimeWarning) on every start."""

import asyncio
import os

from storage.migrate import upgrade
from storage.store import MIGRATE_URL_VARIABLE

asyncio.run(upgrade(os.environ[MIGRATE_URL_VARIABLE]))
