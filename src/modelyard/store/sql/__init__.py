"""SQLAlchemy schema, engines and migrations shared by every SQL-backed store."""
