"""Shared fixtures. Tests marked ``asterisk`` run against the project's real sandbox Asterisk,
which this session starts (building it first on a fresh machine) and leaves running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/asterisk/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.asterisk)
