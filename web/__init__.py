"""The pool's interfaces: the FastAPI app (admin API, health, federation, LLM) and the CLI."""
