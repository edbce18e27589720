"""scripts/benchmark.py: its timing protocol, and a quick run end to end (no timed assertions)."""
import importlib.util
import json

from ..cli import load_script, one_error_line, subprocess_run


def test_median_times_takes_alternating_turns_and_medians(monkeypatch):
    """The engines are timed in turns of alternating order after one warm-up each, and each gets
    the median of its own times (a fake clock that advances 1 s per "ours" call and 3 per "torch")."""
    benchmark = load_script("benchmark")
    clock, calls = [0.0], []

    def engine(name, seconds):
        def run():
            calls.append(name)
            clock[0] += seconds
        return run
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
    medians = benchmark.median_times([engine("ours", 1.0), engine("torch", 3.0)], 3, [lambda: None] * 2)
    assert calls == ["ours", "torch", "ours", "torch", "torch", "ours", "ours", "torch"]   # warm-ups, 3 turns
    assert medians == [1.0, 3.0]
    assert benchmark.ours_and_torch(engine("ours", 2.0), None, 3, [lambda: None] * 2) == (2.0, None)


def test_quick_run_prints_every_case_with_ratios():
    r = subprocess_run("benchmark", "--quick", "--json", "--threads", "2", timeout=600)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    cases = [row["case"] for row in result["rows"]]
    assert cases == ["VGG16 forward, batch 1", "VGG16 saliency, batch 1", "VGG16 class-model step, batch 1",
                     "shapes training step, batch 64"]
    have_torch = importlib.util.find_spec("torch") is not None
    for row in result["rows"]:
        assert row["ours_s"] > 0
        if have_torch:
            assert row["torch_s"] > 0 and row["ratio"] == row["ours_s"] / row["torch_s"]


def test_bad_arguments_give_one_line():
    r = subprocess_run("benchmark", "--repeats", "0")
    assert r.returncode == 2
    assert "--repeats must be at least 1" in one_error_line(r.stderr)
