"""How many threads the engine runs on without being told (minigrad/tiers.py: default_threads), the
same choice in the library on its first heavy op and in every script."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minigrad import tiers

ROOT = Path(__file__).resolve().parents[2]


def test_minigrad_threads_sets_the_number():
    assert tiers.default_threads({"MINIGRAD_THREADS": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="MINIGRAD_THREADS must be a whole number"):
            tiers.default_threads({"MINIGRAD_THREADS": bad})


def test_busy_cores_are_taken_away(monkeypatch):
    """Fake /proc/stat samples: over 100 ticks, other (non-niced) processes used 50: half of the cores this
    process may run on (one of 2, two of 4: the machine's share, not its count)."""
    samples = iter([(1000, 5000), (1050, 5100)])
    monkeypatch.setattr(tiers, "_busy_ticks", lambda: next(samples))
    monkeypatch.setattr(tiers.time, "sleep", lambda s: None)
    monkeypatch.setattr(tiers, "_cores", lambda: 2)
    assert tiers.busy_cores() == 1.0
    samples = iter([(1000, 5000), (1050, 5100)])                      # the same share, 4 cores of our own
    monkeypatch.setattr(tiers, "_cores", lambda: 4)
    assert tiers.busy_cores() == 2.0
    monkeypatch.setattr(tiers, "_cores", lambda: 2)
    monkeypatch.setattr(tiers, "busy_cores", lambda: 1.0)
    assert tiers.default_threads({}) == 1
    monkeypatch.setattr(tiers, "busy_cores", lambda: 0.1)
    assert tiers.default_threads({}) == 2
    monkeypatch.setattr(tiers, "busy_cores", lambda: 5.0)          # never fewer than one
    assert tiers.default_threads({}) == 1


FIRST_USE = """
import numba, numpy as np, threadpoolctl
import minigrad as mg
from minigrad import tiers
numba_before = numba.config.NUMBA_NUM_THREADS
assert tiers._threads is None, "sized at import"
x = mg.Tensor(np.ones((1, 3, 8, 8), np.float32))
mg.functional.conv2d(x, mg.Tensor(np.ones((4, 3, 3, 3), np.float32)), padding=1)    # the first heavy op
from minigrad.fast import parallel
blas = [p["num_threads"] for p in threadpoolctl.threadpool_info()
        if p["user_api"] == "blas" and "numpy" in p["filepath"]]
print(tiers._threads, parallel.threads(), numba.get_num_threads(), max(blas, default=1), mg.threads(),
      numba_before)
"""


def _first_use(**environ):
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_THREADS"}
    env["MINIGRAD_OPS"] = "fast"
    r = subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True, cwd=ROOT,
                       env=dict(env, **environ), timeout=300)
    assert r.returncode == 0, r.stderr
    return [int(v) for v in r.stdout.split()]


def test_the_library_sizes_its_threads_on_first_use():
    """In a fresh interpreter, with no set_threads call: the first convolution sizes the engine's pool and
    Numba's threads to MINIGRAD_THREADS and holds NumPy's BLAS to one thread (the pool splits the GEMMs)."""
    assert _first_use(MINIGRAD_THREADS="1")[:5] == [1, 1, 1, 1, 1]
    chosen, pool, numba_threads, blas, reported, numba_max = _first_use()       # the free cores: 1 .. the cores
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= chosen <= cores and pool == reported == chosen and blas == 1
    assert numba_threads == min(chosen, numba_max)


def test_a_bad_minigrad_threads_stops_the_first_op():
    r = subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, MINIGRAD_THREADS="many"), timeout=300)
    assert r.returncode != 0 and "MINIGRAD_THREADS must be a whole number of at least 1, not 'many'" in r.stderr


def test_scripts_refuse_a_bad_minigrad_threads_in_one_line():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "classify.py"), "--help"], capture_output=True,
                       text=True, cwd=ROOT, env=dict(os.environ, MINIGRAD_THREADS="many"), timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: MINIGRAD_THREADS must be a whole number of at least 1, not 'many'" in r.stderr


def test_the_simple_tier_sizes_its_blas_on_first_use():
    """On the simple tier the first heavy op sets NumPy's BLAS to MINIGRAD_THREADS (1 here: a BLAS that
    starts with more threads shows the change) and loads no Numba."""
    code = """
import sys, numpy as np, threadpoolctl
import minigrad as mg
x = mg.Tensor(np.ones((1, 3, 8, 8), np.float32))
mg.functional.conv2d(x, mg.Tensor(np.ones((4, 3, 3, 3), np.float32)), padding=1)
blas = [p["num_threads"] for p in threadpoolctl.threadpool_info()
        if p["user_api"] == "blas" and "numpy" in p["filepath"]]
print(max(blas, default=1), mg.threads(), "numba" in sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=dict(os.environ, MINIGRAD_THREADS="1", MINIGRAD_OPS="simple"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1", "False"]
