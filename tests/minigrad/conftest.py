"""The ``tier`` fixture: a test that takes it runs once per ops tier (simple.py and fast/), as
minitorch runs one suite over its SimpleOps and FastOps."""
import pytest

import minigrad as mg
from minigrad.tiers import TIERS


@pytest.fixture(params=TIERS)
def tier(request):
    with mg.use_ops(request.param):
        yield request.param
