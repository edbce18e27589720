"""How much of a convolution's work one chunk holds, by device.

The fast convolution (conv.Conv2d) goes a chunk of images, or a band of rows of one image, at a time,
so that its patch matrix and GEMM output stay within a budget of elements. On the CPU the budget is
small (``conv.IM2COL_BUDGET``, ``conv.TRAIN_COLS_BUDGET``, at most ``conv.COLS_BUDGET``: 1 to 16 MB of
float32, sizes the caches and the page faults favour).
On a GPU each chunk costs two kernel launches and a GEMM, and small GEMMs leave the GPU idle, so the
budget is larger: with 2**22 elements a VGG16 forward at batch 32 makes 712 GEMMs and 1424 launches;
with 2**26 it makes 48 and 96 (counted in tests/minigrad/test_gpu_plan.py).
"""
import numpy as np

#: elements of one chunk's patch matrix or GEMM output on a GPU (float32: 256 MB), at most a 64th of
#: the device's memory (two such buffers are kept, ``memory.scratch``).
GPU_COLS_BUDGET = 2**26

_gpu_budgets = {}      # device id -> budget


def chunk_budget(xp):
    """The chunk budget, in elements, for arrays of module ``xp``; None for NumPy (then the CPU's
    budgets in conv.py apply)."""
    if xp is np:
        return None
    device = xp.cuda.Device()
    if device.id not in _gpu_budgets:
        total_bytes = device.mem_info[1]
        _gpu_budgets[device.id] = max(2**20, min(GPU_COLS_BUDGET, total_bytes // 64 // 4))
    return _gpu_budgets[device.id]
