"""A run's record: the bounded in-memory store and the session folder format (read and write)."""
