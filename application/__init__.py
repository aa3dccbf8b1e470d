"""Application services: one per bounded area. Each command loads, decides and saves."""
