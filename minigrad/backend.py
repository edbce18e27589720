"""The array backend: NumPy on the CPU, CuPy on the GPU, chosen by the array itself.

Everything outside ``minigrad/fast`` (the fast tier's kernels) is written once for both, with the idiom

    xp = get_array_module(x)      # numpy or cupy
    y = xp.maximum(x, 0)

CuPy is imported lazily and is optional: a CPU-only machine never imports it.
"""
import numpy as np

#: dtype that Python scalars and lists become, and that models use.
DEFAULT_DTYPE = np.float32

_cupy = None          # the cupy module once imported, False if unavailable


def _import_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()      # raises without a usable GPU
            _cupy = cupy
        except Exception:                           # ImportError, CUDARuntimeError, ...
            _cupy = False
    return _cupy or None


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    return _import_cupy() is not None


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (cf. chainer)."""
    for a in arrays:
        data = getattr(a, "data", a)                # accept Tensors too
        if type(data).__module__.startswith("cupy"):
            return _import_cupy()
    return np


def device_of(array):
    """'gpu' for a CuPy array, 'cpu' otherwise."""
    return "cpu" if get_array_module(array) is np else "gpu"


def check_device(device):
    """Validate a device name; raise a one-line error for an unusable GPU."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'gpu'")
    if device == "gpu" and not gpu_available():
        raise RuntimeError("--device gpu: no usable GPU (CuPy is not installed or sees no CUDA device)")
    return device


def to_device(array, device):
    """Move an array to ``'cpu'`` (NumPy) or ``'gpu'`` (CuPy); a no-op if already there."""
    check_device(device)
    if device == "cpu":
        return array.get() if get_array_module(array) is not np else np.asarray(array)
    return _import_cupy().asarray(array)


def to_numpy(array):
    """A NumPy copy (or view) of an array on any device."""
    return to_device(array, "cpu")
