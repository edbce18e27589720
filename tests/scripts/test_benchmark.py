"""scripts/benchmark.py: its timing protocol, and a quick run end to end (no timed assertions)."""
import importlib.util
import json

from ..cli import load_script, one_error_line, subprocess_run


def test_median_times_takes_turns_and_medians():
    """The engines are timed in turns after one warm-up each, and each gets its own median."""
    benchmark = load_script("benchmark")
    calls = []
    fns = [lambda: calls.append("ours"), lambda: calls.append("torch")]
    medians = benchmark.median_times(fns, 3, [lambda: None, lambda: None])
    assert calls == ["ours", "torch"] * 4                    # warm-ups, then three turns
    assert len(medians) == 2 and all(m >= 0 for m in medians)


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
