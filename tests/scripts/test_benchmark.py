"""scripts/benchmark.py: its protocol (fresh processes in alternating rounds, warm-up excluded,
medians), its report of what ran, and a quick run end to end (no timed assertions)."""
import importlib.util
import json

import pytest

from ..cli import load_script, one_error_line, subprocess_run


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark")


def test_time_case_excludes_the_warm_up_and_takes_the_median(bench, monkeypatch):
    """A fake clock: the warm-up call takes 100 s (compilation), the timed ones 3, 1 and 2 s."""
    clock, durations, synced = [0.0], iter([100.0, 3.0, 1.0, 2.0]), []

    def fn():
        clock[0] += next(durations)
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    assert bench.time_case(fn, 3, lambda: synced.append(clock[0])) == 2.0
    assert synced == [100.0, 103.0, 104.0, 106.0]          # each run synchronised before its time is read
    assert bench.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_rounds_alternate_fresh_processes_and_take_medians_over_rounds(bench, monkeypatch):
    """A fake subprocess.run: it records each worker's command line and answers with fake times."""
    calls, answers = [], {"ours": iter([1.0, 5.0, 2.0]), "torch": iter([3.0, 3.5, 9.0])}

    def fake_run(command, **kwargs):
        engine = command[command.index("--worker") + 1]
        keys = command[command.index("--cases") + 1].split(",")
        calls.append((engine, keys, command[command.index("--threads") + 1]))
        t = next(answers[engine])
        out = json.dumps({"times": {k: t for k in keys}, "info": {"blas": engine, "threads": 2}})
        return bench.subprocess.CompletedProcess(command, 0, out + "\n", "")
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    args = bench.parse_args(["--rounds", "3", "--batches", "1"])

    class Progress:
        n = 0

        def update(self, k):
            self.n += k
    progress = Progress()
    result = bench.measure(args, 2, True, progress)
    assert [engine for engine, _, _ in calls] == ["ours", "torch", "torch", "ours", "ours", "torch"]
    assert all(keys == ["forward/1", "saliency/1", "class-model/1", "train/64"] and threads == "2"
               for _, keys, threads in calls)
    assert progress.n == 6
    row = result["rows"][0]
    assert row["case"] == "VGG16 forward, batch 1"
    assert row["ours_rounds_s"] == [1.0, 5.0, 2.0] and row["ours_s"] == 2.0     # the median over rounds
    assert row["torch_s"] == 3.5 and row["ratio"] == 2.0 / 3.5
    assert result["info"] == {"ours": {"blas": "ours", "threads": 2}, "torch": {"blas": "torch", "threads": 2}}


def test_competing_rounds_keep_a_busy_process_beside_each_worker(bench, monkeypatch):
    started, killed = [], []

    class FakeBusy:
        def __init__(self, command):
            started.append(command)

        def kill(self):
            killed.append(True)

        def wait(self):
            pass

    def fake_run(command, **kwargs):
        assert len(started) == len(killed) + 1              # the busy loop runs while the worker does
        keys = command[command.index("--cases") + 1].split(",")
        return bench.subprocess.CompletedProcess(command, 0, json.dumps({"times": {k: 1.0 for k in keys},
                                                                             "info": {}}), "")
    monkeypatch.setattr(bench.subprocess, "Popen", FakeBusy)
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    result = bench.run_worker("ours", ["class-model/1"], bench.parse_args([]), 2, competing=True)
    assert result["times"] == {"class-model/1": 1.0}
    assert started[0][-1] == "while True: pass" and killed == [True]


def test_a_failing_worker_is_one_error(bench, monkeypatch):
    monkeypatch.setattr(bench.subprocess, "run", lambda command, **kw: bench.subprocess.CompletedProcess(
        command, 1, "", "Traceback ...\nMemoryError: out of memory\n"))
    with pytest.raises(RuntimeError, match="the torch process failed: MemoryError: out of memory"):
        bench.run_worker("torch", ["forward/1"], bench.parse_args([]), 2)


def test_resnet50_cases_are_planned_after_the_vgg16_ones_or_alone(bench, monkeypatch):
    seen = []

    def fake_run_worker(engine, keys, args, threads, competing=False):
        seen.append(keys)
        return {"times": {k: 1.0 for k in keys}, "info": {"threads": threads}}
    monkeypatch.setattr(bench, "run_worker", fake_run_worker)
    progress = type("P", (), {"update": lambda self, k: None})()
    result = bench.measure(bench.parse_args(["--rounds", "1", "--batches", "1", "--resnet50"]), 2, True, progress)
    assert seen[0] == ["forward/1", "saliency/1", "class-model/1", "train/64", "resnet50-forward/1",
                       "resnet50-saliency/1"]
    assert [r["case"] for r in result["rows"]][-2:] == ["ResNet-50 forward, batch 1", "ResNet-50 saliency, batch 1"]
    seen.clear()
    args = bench.parse_args(["--rounds", "1", "--only-resnet50"])
    bench.measure(args, 2, True, progress)
    assert seen == [["resnet50-forward/1", "resnet50-saliency/1"]] * 2 and args.no_memory


def test_kernel_notes_name_forcing_variables_and_old_kernels(bench):
    avx512 = {"avx2", "avx512f"}
    skylake = {"internal_api": "openblas", "architecture": "SkylakeX"}
    haswell = {"internal_api": "openblas", "architecture": "Haswell"}
    assert bench.kernel_notes(skylake, avx512, {}) == []
    notes = bench.kernel_notes(haswell, avx512, {"OPENBLAS_CORETYPE": "Haswell"})
    assert len(notes) == 2 and "OPENBLAS_CORETYPE=Haswell" in notes[0]
    assert "Haswell kernel, older than this CPU supports (AVX-512)" in notes[1]
    assert bench.kernel_notes(haswell, {"avx2"}, {}) == []                # the best this CPU has
    assert bench.kernel_notes({"internal_api": "openblas", "architecture": "Sandybridge"}, {"avx2"}, {})
    assert bench.kernel_notes({"internal_api": "mkl"}, avx512, {}) == []


def test_quick_run_prints_every_case_with_ratios_and_what_ran():
    r = subprocess_run("benchmark", "--quick", "--json", "--threads", "1", timeout=900)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    cases = [row["case"] for row in result["rows"]]
    assert cases == ["VGG16 forward, batch 1", "VGG16 saliency, batch 1", "VGG16 class-model step, batch 1",
                     "shapes training step, batch 64"]
    assert result["rounds"] == 2 and result["repeats"] == 2 and result["threads"] == 1
    ours = result["info"]["ours"]
    assert ours["threads"] == 1 and ours["numba_threads"] == 1 and ours["blas_info"]["architecture"]
    have_torch = importlib.util.find_spec("torch") is not None
    for row in result["rows"]:
        assert row["ours_s"] > 0 and len(row["ours_rounds_s"]) == 2
        if have_torch:
            assert row["torch_s"] > 0 and row["ratio"] == row["ours_s"] / row["torch_s"]
    if have_torch:
        assert result["info"]["torch"]["threads"] == 1


@pytest.mark.parametrize("argv, message", [(["--repeats", "0"], "--repeats must be at least 1"),
                                           (["--threads", "0"], "--threads must be at least 1"),
                                           (["--batches", "1,x"], "--batches must be whole numbers")])
def test_bad_arguments_give_one_line(argv, message):
    r = subprocess_run("benchmark", *argv)
    assert r.returncode == 2
    assert message in one_error_line(r.stderr)


def test_competing_rounds_let_each_engine_choose_its_threads_unless_told(bench, monkeypatch):
    seen = []

    def fake_run_worker(engine, keys, args, threads, competing=False):
        seen.append((engine, competing, threads))
        return {"times": {k: 1.0 for k in keys}, "info": {"threads": threads or 1}}
    monkeypatch.setattr(bench, "run_worker", fake_run_worker)
    progress = type("P", (), {"update": lambda self, k: None})()
    bench.measure(bench.parse_args(["--rounds", "1", "--competing"]), 2, True, progress)
    assert seen == [("ours", False, 2), ("torch", False, 2), ("ours", True, None), ("torch", True, None)]
    seen.clear()
    bench.measure(bench.parse_args(["--rounds", "1", "--competing", "--threads", "2"]), 2, True, progress)
    assert [t for _, _, t in seen] == [2, 2, 2, 2]


def test_table_gives_time_per_image_and_batch_8_against_batch_1(bench, capsys):
    def row(case, batch, ours, torch):
        return {"case": f"VGG16 {case}, batch {batch}", "batch": batch, "ours_s": ours, "torch_s": torch,
                "ratio": ours / torch, "ours_per_image_s": ours / batch, "torch_per_image_s": torch / batch,
                "competing_process": False}
    info = {"ours": {"blas": "openblas", "threads": 2, "blas_threads": 1, "numba_threads": 2,
                     "numba_threading_layer": "workqueue"},
            "torch": {"library": "PyTorch", "blas": "MKL", "threads": 2}}
    result = {"info": info, "rows": [row("forward", 1, 0.2, 0.25), row("forward", 8, 1.2, 1.6),
                                     row("saliency", 1, 0.5, 0.4), row("saliency", 8, 4.8, 3.2)],
              "cpu": "a CPU", "device": "cpu", "threads": 2, "rounds": 3, "repeats": 2, "notes": [],
              "peak_memory_vgg16_saliency": {}}
    bench.print_table(result)
    out = capsys.readouterr().out
    assert "| VGG16 forward, batch 8" in out and "|    1200.0 |       1600.0 |           0.75 |" \
        "               150.0 |                  200.0 |" in out
    assert "ours, VGG16 forward per image against batch 1: batch 8 0.75" in out
    assert "PyTorch, VGG16 saliency per image against batch 1: batch 8 1.00" in out
