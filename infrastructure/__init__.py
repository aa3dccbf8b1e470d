"""Adapters to the outside: PostgreSQL, Redis, Dramatiq, crypto, and the wiring of them all."""
