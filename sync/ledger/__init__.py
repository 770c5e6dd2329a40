"""The ledger: SQLAlchemy models, the database connection and the queries the engine runs."""
