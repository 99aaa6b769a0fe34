"""Shared test helpers (importable once tests/ is on sys.path)."""
