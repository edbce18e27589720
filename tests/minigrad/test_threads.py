"""minigrad/threads.py: how many threads the scripts give the engine, the BLAS and Numba."""
import numba
import pytest
import threadpoolctl

from minigrad import parallel, threads


def test_minigrad_threads_sets_the_number(monkeypatch):
    assert threads.auto_threads({"MINIGRAD_THREADS": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="MINIGRAD_THREADS must be a whole number"):
            threads.auto_threads({"MINIGRAD_THREADS": bad})


def test_busy_cores_are_taken_away(monkeypatch):
    """Fake /proc/stat samples: over 100 ticks of 2 cores, other (non-niced) processes used 50: one core."""
    samples = iter([(1000, 5000), (1050, 5100)])
    monkeypatch.setattr(threads, "_busy_ticks", lambda: next(samples))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.busy_cores() == 1.0
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.0)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert threads.auto_threads({}) == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.1)
    assert threads.auto_threads({}) == 2
    monkeypatch.setattr(threads, "busy_cores", lambda: 5.0)          # never fewer than one
    assert threads.auto_threads({}) == 1


def test_set_threads_sets_the_engines_threads_and_keeps_the_blas_on_one():
    """The engine's own threads split the GEMMs (parallel.py), so the BLAS gets one; Numba's (pooling,
    ReLU) get the number, up to the NUMBA_NUM_THREADS it started with."""
    before_blas = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    before_numba, before_own = numba.get_num_threads(), parallel.threads()
    try:
        for n in (1, 2):
            threads.set_threads(n)
            assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")
            assert numba.get_num_threads() == min(n, numba.config.NUMBA_NUM_THREADS)
            assert parallel.threads() == n
    finally:
        threadpoolctl.threadpool_limits(max(before_blas or [1]), user_api="blas")
        numba.set_num_threads(before_numba)
        parallel.set_threads(before_own)


def test_scripts_refuse_a_bad_minigrad_threads_in_one_line():
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "scripts" / "classify.py"), "--help"], capture_output=True,
                       text=True, cwd=root, env=dict(os.environ, MINIGRAD_THREADS="many"), timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "error: MINIGRAD_THREADS must be a whole number of at least 1, not 'many'" in r.stderr
