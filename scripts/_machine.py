"""What a benchmark ran on (scripts/benchmark.py, scripts/profile_layers.py): the CPU, the BLAS library
and the kernel it chose, each engine's threads, how busy the machine was, and notes where a variable
forces an older kernel than the CPU has."""
import os

#: variables that force a BLAS or PyTorch onto other kernels than the CPU's best
FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE_CORETYPE", "MKL_DEBUG_CPU_TYPE",
                     "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES")
#: OpenBLAS kernels (threadpoolctl's ``architecture``) that use AVX-512, and those that use at least AVX2
AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}
AVX2_KERNELS = AVX512_KERNELS | {"haswell", "zen", "excavator", "steamroller"}


def cpu_model():
    """(model name, set of CPU flags) from /proc/cpuinfo; the platform's name elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        import platform
        return platform.processor() or platform.machine(), set()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name", "unknown CPU"), set(fields.get("flags", "").split())


def kernel_notes(blas, flags, environ):
    """Lines that warn when the BLAS kernel that ran is older than the CPU supports, or when a
    variable forces a kernel. ``blas``: threadpoolctl's info of a BLAS (``internal_api``,
    ``architecture``); ``flags``: the CPU's flags; ``environ``: the environment it ran in."""
    notes = [f"{var}={environ[var]} is set: it forces a kernel (or a cache size) other than the CPU's own; "
             f"a user's machine does not set it" for var in FORCING_VARIABLES if var in environ]
    arch = (blas or {}).get("architecture")
    if arch and (blas or {}).get("internal_api") == "openblas":
        best = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
        if (best == "AVX-512" and arch.lower() not in AVX512_KERNELS) or \
                (best == "AVX2" and arch.lower() not in AVX2_KERNELS):
            notes.append(f"OpenBLAS ran its {arch} kernel, older than this CPU supports ({best})")
    return notes


def machine_cpu_seconds():
    """CPU seconds that all processes of this machine have used since boot (/proc/stat); None elsewhere."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU seconds of this process and of its children that have ended (the workers, the busy loops)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def engine_info(engine, device):
    """What this worker process ran on: the BLAS library, its kernel and threads, and for ours Numba's."""
    if engine == "torch":
        import torch
        info = {"library": f"PyTorch {torch.__version__}", "threads": torch.get_num_threads()}
        if device == "gpu":
            info["blas"] = f"cuBLAS/cuDNN on {torch.cuda.get_device_name()}, TF32 off"
        else:
            blas = "MKL" if torch.backends.mkl.is_available() else "its own BLAS"
            info["blas"] = f"{blas} and oneDNN, CPU capability {torch.backends.cpu.get_cpu_capability()}"
        return info
    import numba
    import numpy as np
    import threadpoolctl
    blases = [b for b in threadpoolctl.threadpool_info() if b["user_api"] == "blas"]
    blas = next((b for b in blases if "numpy" in b["filepath"]), blases[0] if blases else {})   # NumPy's: the GEMMs
    import minigrad as mg
    info = {"library": f"NumPy {np.__version__}", "blas_info": {k: blas.get(k) for k in
            ("internal_api", "version", "architecture", "num_threads", "threading_layer")},
            "threads": mg.threads(), "blas_threads": blas.get("num_threads"),
            "numba_threads": numba.get_num_threads(),
            "numba_threading_layer": numba.config.THREADING_LAYER}
    info["blas"] = f"{blas.get('internal_api')} {blas.get('version')}, kernel {blas.get('architecture')}"
    if device == "gpu":
        import cupy
        info["blas"] = f"cuBLAS (CuPy {cupy.__version__}) on {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}"
    return info
