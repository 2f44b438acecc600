"""Database operations: keyword-only functions; each public write commits once."""
