"""Shared test configuration.

Tests marked `stack` need the local emulator stack; `make test` runs them inside `make exec`, which
sets FIRESTORE_EMULATOR_HOST and friends. Run alone without the stack they are skipped, with why;
with EMOCHAT_REQUIRE_STACK=1 (as `make test` sets) a missing stack is an error instead.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        return
    if os.environ.get("EMOCHAT_REQUIRE_STACK") == "1":
        if any(item.get_closest_marker("stack") for item in items):
            raise pytest.UsageError("stack tests need the emulators: run them through `make exec`")
        return
    skip = pytest.mark.skip(reason="needs the emulator stack: run through `make test` or `make exec`")
    for item in items:
        if item.get_closest_marker("stack"):
            item.add_marker(skip)
