"""Everything that knows SQL: engine, tables, migrations and the store's methods."""
