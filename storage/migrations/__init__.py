"""Alembic migrations of the storage schema (run by storage.migrate at start-up)."""
