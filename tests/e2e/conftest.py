"""Fixtures of the end-to-end tests (helpers live in e2e_helpers.py)."""

from __future__ import annotations

from e2e_helpers import app, clean_faults, db, speech_dir  # noqa: F401  (fixtures)
