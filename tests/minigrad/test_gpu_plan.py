"""The GPU's chunk budget (fast/plan.py): larger than the CPU's, bounded by the device's memory, and
what it does to the number of GEMMs and kernel launches of a VGG16 forward. Runs without a GPU: the
budget only asks CuPy for the device's memory, answered here by a stand-in."""
import types

import numpy as np
import pytest

from minigrad.fast import conv as F
from minigrad.fast import plan

VGG16_CONVS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
               (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28), (512, 512, 14), (512, 512, 14),
               (512, 512, 14)]                                           # (in, out, side), 3x3, padding 1


def fake_cupy(device_id, total_bytes):
    device = types.SimpleNamespace(id=device_id, mem_info=(total_bytes // 2, total_bytes))
    return types.SimpleNamespace(cuda=types.SimpleNamespace(Device=lambda: device))


@pytest.fixture(autouse=True)
def fresh_budgets(monkeypatch):
    monkeypatch.setattr(plan, "_gpu_budgets", {})


def test_cpu_keeps_its_budget():
    assert plan.chunk_budget(np) is None
    assert F._chunks(1, 576, 224, 224) == F._chunks(1, 576, 224, 224, F.COLS_BUDGET)


def test_gpu_budget_and_its_memory_bound():
    assert plan.chunk_budget(fake_cupy(0, 80 * 2**30)) == plan.GPU_COLS_BUDGET == 2**26
    assert plan.chunk_budget(fake_cupy(1, 4 * 2**30)) == 4 * 2**30 // 64 // 4      # a 4 GB GPU: 64 MB
    assert plan._gpu_budgets == {0: 2**26, 1: 2**24}                     # asked once per device


def gemms(batch, budget):
    return sum(len(F._chunks(batch, max(9 * c, o), side, side, budget)) for c, o, side in VGG16_CONVS)


def test_gpu_budget_makes_vgg16_batch_32_few_large_gemms():
    assert gemms(32, F.COLS_BUDGET) == 712                               # the CPU's budget: 712 GEMMs, 1424 launches
    assert gemms(32, plan.chunk_budget(fake_cupy(0, 80 * 2**30))) == 48
    for c, o, side in VGG16_CONVS:                                       # and no chunk exceeds the budget
        for n0, n1, oy0, oy1 in F._chunks(32, max(9 * c, o), side, side, 2**26):
            assert max(9 * c, o) * (n1 - n0) * (oy1 - oy0) * side <= 2**26
