"""The GPU check behind ``--device gpu`` (tiers.gpu_problem: CuPy's steps in backend.gpu_problem, the
fast tier's numba.cuda kernels in fast/kernels.py): each way it can fail, simulated, gives one line
that keeps the reason; the simple tier does not need the kernels; and a stand-in CuPy made of NumPy,
with the kernels on the CUDA simulator, passes it. (On a GPU machine, gpu_check.sh runs the real
thing.)"""
import sys
import types

import numpy as np
import pytest

pytest.importorskip("numba.cuda", reason="no numba.cuda: neither Numba's own nor numba-cuda's (the test-cuda "
                                         "extra: pip install -e '.[test-cuda]')")

import minigrad as mg  # noqa: E402
from minigrad import backend, tiers  # noqa: E402
from minigrad.fast import gpu_kernels, kernels  # noqa: E402

from ..cli import SCRIPTS  # noqa: E402


def fake_cupy(devices=1, device_error=None, matmul_error=None):
    """A module that answers like CuPy, on NumPy arrays."""
    def count():
        if device_error:
            raise device_error
        return devices

    def asnumpy(a):
        return np.asarray(a)

    class Array(np.ndarray):
        def __matmul__(self, other):
            if matmul_error:
                raise matmul_error
            return np.asarray(self) @ np.asarray(other)

    return types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count)),
        float32=np.float32, asarray=np.asarray, asnumpy=asnumpy, empty_like=np.empty_like,
        arange=lambda n, dtype: np.arange(n, dtype=dtype).view(Array))


@pytest.fixture
def probe(monkeypatch):
    """Run the check afresh with ``cupy`` replaced; returns its answer."""
    def run(cupy):
        monkeypatch.setitem(sys.modules, "cupy", cupy)
        monkeypatch.setattr(backend, "_gpu_problem", None)
        monkeypatch.setattr(kernels, "_gpu_problem", None)
        with mg.use_ops("fast"):
            return tiers.gpu_problem()
    yield run
    backend._gpu_problem = kernels._gpu_problem = None


def assert_one_line(problem, *words):
    assert problem and "\n" not in problem, problem
    for w in words:
        assert w in problem, f"{w!r} not in {problem!r}"


def test_without_cupy(probe):
    assert_one_line(probe(None), "CuPy is not installed", "ModuleNotFoundError")


def test_driver_too_old(probe):
    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is\ninsufficient for CUDA runtime version")
    problem = probe(fake_cupy(device_error=error))
    assert_one_line(problem, "cannot reach a CUDA device", "cudaErrorInsufficientDriver", "insufficient for CUDA runtime")


def test_no_device(probe):
    assert_one_line(probe(fake_cupy(devices=0)), "no CUDA device")


def test_cublas_missing(probe):
    error = ImportError("libcublas.so.13: cannot open shared object file: No such file or directory")
    assert_one_line(probe(fake_cupy(matmul_error=error)), "matmul failed", "cuBLAS", "libcublas.so.13")


def test_kernel_fails(probe, monkeypatch):
    def no_nvvm(*args):
        raise OSError("libnvvm.so: cannot open shared object file")
    monkeypatch.setattr(gpu_kernels, "relu_forward", no_nvvm)
    assert_one_line(probe(fake_cupy()), "numba.cuda kernel failed", "OSError", "libnvvm.so")


def test_kernel_wrong_numbers(probe, monkeypatch):
    monkeypatch.setattr(gpu_kernels, "relu_forward", lambda x, out: out.fill(1))
    assert_one_line(probe(fake_cupy()), "numba.cuda kernel gave wrong numbers")


def test_working_gpu_passes_and_is_checked_once(probe, monkeypatch):
    assert probe(fake_cupy()) is None                   # the matmul and the (simulated) kernel ran
    with mg.use_ops("fast"):
        assert mg.gpu_available() and tiers.check_device("gpu") == "gpu"
    monkeypatch.setitem(sys.modules, "cupy", None)      # a second call does not probe again
    assert tiers.gpu_problem() is None


def test_the_simple_tier_needs_no_kernels(probe, monkeypatch):
    def no_numba_cuda(*args):
        raise ImportError("No module named 'numba.cuda'")
    monkeypatch.setattr(gpu_kernels, "relu_forward", no_numba_cuda)
    assert "numba.cuda kernel failed" in probe(fake_cupy())
    with mg.use_ops("simple"):
        assert tiers.gpu_problem() is None and tiers.check_device("gpu") == "gpu"


def test_check_device_and_scripts_say_it_in_one_line(probe):
    probe(fake_cupy(devices=0))
    with pytest.raises(RuntimeError) as e:
        tiers.check_device("gpu")
    assert str(e.value) == "--device gpu: no usable GPU: CuPy sees no CUDA device"
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _common
    finally:
        sys.path.pop(0)
    with pytest.raises(_common.CLIError, match="^--device gpu: no usable GPU: CuPy sees no CUDA device$"):
        _common.check_device("gpu")
