from __future__ import annotations

import pytest
from wavs import make_wav


@pytest.fixture
def tone_wav() -> bytes:
    return make_wav()
