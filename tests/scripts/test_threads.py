"""scripts/_common.py: how many threads the scripts give the engine (the cores no other process keeps
busy, or MINIGRAD_THREADS)."""
import pytest

from ..cli import load_script

threads = load_script("_common")


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
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert threads.auto_threads({}) == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.1)
    assert threads.auto_threads({}) == 2
    monkeypatch.setattr(threads, "busy_cores", lambda: 5.0)          # never fewer than one
    assert threads.auto_threads({}) == 1


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
