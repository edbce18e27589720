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


def gpu_problem():
    """Why arrays cannot live on a GPU here, in one line; None when they can.

    Checked once per process, step by step, so that the reason names what is missing: CuPy imports,
    it sees a CUDA device (a driver too old for CuPy's CUDA fails here), and a small matmul gives the
    right numbers (cuBLAS). The fast tier's numba.cuda kernels are checked apart (tiers.gpu_problem).
    """
    global _gpu_problem
    if _gpu_problem is None:
        _gpu_problem = _probe_gpu() or ""
    return _gpu_problem or None


_gpu_problem = None   # "" once the probe passed, the reason once it failed


def one_line(e):
    """An exception as one line, whatever the library says."""
    return " ".join(f"{type(e).__name__}: {e}".split())


def _probe_gpu():
    import importlib
    try:
        cupy = importlib.import_module("cupy")
    except Exception as e:                                          # ImportError, or a broken install
        return f"CuPy is not installed or does not import ({one_line(e)}); see the README's GPU extras"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as e:                                          # no driver, or one too old for CuPy's CUDA
        return f"CuPy cannot reach a CUDA device ({one_line(e)})"
    try:
        a = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
        product = cupy.asnumpy(a @ a.T)
    except Exception as e:
        return f"a CuPy matmul failed, cuBLAS is missing or broken ({one_line(e)})"
    if not np.array_equal(product, [[5, 14], [14, 50]]):
        return f"a CuPy matmul gave wrong numbers: {product.tolist()} instead of [[5, 14], [14, 50]]"
    return None


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy`` (cf. chainer)."""
    for a in arrays:
        data = a.data if hasattr(a, "requires_grad") else a   # accept Tensors too
        if type(data).__module__.startswith("cupy"):
            return _import_cupy()
    return np


def device_of(array):
    """'gpu' for a CuPy array, 'cpu' otherwise."""
    return "cpu" if get_array_module(array) is np else "gpu"


def check_device(device):
    """Validate a device name; raise a one-line error where arrays cannot live on the GPU
    (tiers.check_device also checks the tier's kernels)."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'gpu'")
    if device == "gpu" and gpu_problem():
        raise RuntimeError(f"--device gpu: no usable GPU: {gpu_problem()}")
    return device


def check_same_device(op, *operands):
    """Raise a one-line ValueError when the arrays (or Tensors) given to ``op`` are on two devices:
    the CPU and a GPU, or two GPUs. Scalars and None are ignored.

    Without it, a NumPy weight meets a CuPy input deep inside an op (and NumPy refuses the implicit
    conversion in words about ``__array__``), or a NumPy bias is copied to the GPU on every launch.
    """
    devices = []
    for a in operands:
        a = a.data if hasattr(a, "requires_grad") else a           # a Tensor: its array
        if isinstance(a, np.ndarray):
            devices.append("cpu")
        elif type(a).__module__.startswith("cupy"):
            devices.append(f"gpu {a.device.id}")
    if len(set(devices)) > 1:
        raise ValueError(f"{op}: arrays on different devices ({', '.join(devices)}); put them on one "
                         "device (Module.to(device), minigrad.to_device)")


def to_device(array, device):
    """Move an array to ``'cpu'`` (NumPy) or ``'gpu'`` (CuPy); a no-op if already there."""
    check_device(device)
    if device == "cpu":
        return array.get() if get_array_module(array) is not np else np.asarray(array)
    return _import_cupy().asarray(array)


def to_numpy(array):
    """A NumPy copy (or view) of an array on any device."""
    return to_device(array, "cpu")
