"""An op given arrays on two devices says so in one line (backend.check_same_device), before any
array is touched. Without a GPU, a stand-in for a CuPy array (a class whose module is cupy's) is enough:
the check only looks at where each array lives. tests/minigrad/test_gpu_ops.py repeats it with CuPy."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad import functional as F


def gpu_array(shape, device=0):
    """An object that passes for a CuPy array on GPU ``device``."""
    cls = type("ndarray", (), {"__module__": "cupy._core.core"})
    a = cls()
    a.shape, a.ndim, a.dtype = tuple(shape), len(shape), np.dtype(np.float32)
    a.device = type("Device", (), {"id": device})()
    return a


def one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_conv2d_with_weight_on_another_device():
    x = mg.Tensor(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError) as e:
        F.conv2d(x, gpu_array((3, 2, 3, 3)))
    assert one_line(e).startswith("conv2d: arrays on different devices (cpu, gpu 0)")
    with pytest.raises(ValueError, match=r"conv2d: arrays on different devices \(cpu, cpu, gpu 0\)"):
        F.conv2d(x, np.zeros((3, 2, 3, 3), np.float32), gpu_array((3,)))      # a bias on the GPU


def test_linear_and_arithmetic_operands_on_two_devices():
    x = mg.Tensor(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"^linear: arrays on different devices \(cpu, gpu 0\)"):
        F.linear(x, gpu_array((3, 4)))
    for op in (F.add, F.mul, F.sub, F.div, F.matmul):
        with pytest.raises(ValueError, match=rf"^{op.__name__}: arrays on different devices"):
            op(x, gpu_array((4, 4)))


def test_two_gpus_are_two_devices():
    with pytest.raises(ValueError, match=r"arrays on different devices \(gpu 0, gpu 1\)"):
        backend.check_same_device("conv2d", gpu_array((1,), 0), gpu_array((1,), 1))
    backend.check_same_device("conv2d", gpu_array((1,), 1), gpu_array((1,), 1), None, 2.0)   # one device: fine


def test_same_device_and_scalars_pass():
    x = mg.Tensor(np.ones((2, 4), np.float32))
    assert (x * 2.0).data.dtype == np.float32 and F.linear(x, np.ones((3, 4), np.float32)).shape == (2, 3)
