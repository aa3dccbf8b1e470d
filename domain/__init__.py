"""Archipel's domain: aggregates, events, value objects and errors. Pure Python, no I/O."""
