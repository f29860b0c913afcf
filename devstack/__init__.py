"""Local development stack: embedded PostgreSQL and moto, and the launcher for `make run`."""
