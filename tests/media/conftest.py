"""Fixtures of the media tests (helpers live in media_helpers.py)."""

from __future__ import annotations

import pytest
from media_helpers import EnergyVad


@pytest.fixture
def energy_vad() -> EnergyVad:
    return EnergyVad()
