"""evaluate_localisation.py end to end on a small generated shapes set with the shipped network:
in this process, on a local Dask cluster of 2 worker processes, interrupted (also by Ctrl-C in a
terminal) and resumed, and with a worker killed mid-run. Every run must give the same tables."""
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from models import datasets, shapes
from saliency import evaluation as E

from ..cli import ROOT, SCRIPTS, call, load_script, one_error_line, subprocess_run

N = 12
WEIGHTS = ROOT / "weights" / "shapes_vgg.h5"


@pytest.fixture(scope="module", autouse=True)
def worker_threads():
    """Every run in this process on the threads of a worker of the 2-worker clusters below (``thread_env``):
    a convolution's rounding depends on the number of threads (docs/reproducibility.md: on OpenBLAS's
    Haswell kernel 1 and 2 threads differ), and the tables are compared bit for bit."""
    import minigrad as mg
    before = mg.threads()
    mg.set_threads(int(load_script("evaluate_localisation").thread_env(2)["MINIGRAD_THREADS"]))
    yield
    mg.set_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes_set")
    assert call("make_shapes_dataset", "--n", N, "--seed", 31337, "--out", root) == 0
    return root


def args(data, out, *extra):
    return ["--images", data / "images", "--annotations", data / "annotations", "--out", out, "--crops", 1,
            *extra]


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The run in this process alone (--scheduler synchronous), centre crop, top 5."""
    out = tmp_path_factory.mktemp("reference")
    assert call("evaluate_localisation", *args(data, out, "--scheduler", "synchronous", "--shard-size", 3)) == 0
    return out


def tables(out):
    return (out / "results.csv").read_text(), json.loads((out / "summary.json").read_text())


def no_temporary_files(out):
    left = [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not left, left


def test_make_shapes_dataset_writes_images_xml_and_masks(data):
    names = sorted(p.stem for p in (data / "images").iterdir())
    assert len(names) == N and names == sorted(p.stem for p in (data / "masks").iterdir())
    images, labels, masks, boxes = shapes.make_dataset(N, seed=31337, size=64)
    items = datasets.read_dataset(data / "images", data / "annotations", shapes.CLASSES)
    from_csv = datasets.read_dataset(data / "images", data / "LOC_solution.csv", shapes.CLASSES)
    for k, (item, row) in enumerate(zip(items, from_csv)):
        assert item.objects == row.objects == [(int(labels[k]), tuple(int(v) for v in boxes[k]))]
        assert np.array_equal(np.asarray(Image.open(item.path)), images[k])
        assert np.array_equal(np.asarray(Image.open(data / "masks" / f"{item.image_id}.png")) > 0, masks[k])


def test_every_guess_follows_the_devkit_rule_and_beats_a_centred_box(data, reference):
    rows = list(csv.DictReader((reference / "results.csv").open()))
    assert list(rows[0]) == ["image", "rank", "class", "class_name", "score", "x0", "y0", "x1", "y1", "iou", "correct",
                             "threshold_x0", "threshold_y0", "threshold_x1", "threshold_y1", "threshold_iou",
                             "threshold_correct"]
    assert len(rows) == 5 * N
    truth = {i.image_id: i.objects for i in datasets.read_dataset(data / "images", data / "annotations",
                                                                  shapes.CLASSES)}
    for r in rows:
        box, objects = tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1")), truth[r["image"]]
        assert 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 64
        assert r["class_name"] == shapes.CLASSES[int(r["class"])]
        # the devkit's rule on its own inclusive boxes, from the CSV's exclusive ones
        right = any(c == int(r["class"]) and E.devkit_iou(E.to_inclusive(box), E.to_inclusive(b)) >= 0.5
                    for c, b in objects)
        assert int(r["correct"]) == int(right)
        assert float(r["iou"]) == pytest.approx(E.best_iou(int(r["class"]), box, objects), abs=5e-5)
        tbox = tuple(int(r[f"threshold_{k}"]) for k in ("x0", "y0", "x1", "y1"))     # the same map's threshold box
        assert int(r["threshold_correct"]) == E.is_correct(int(r["class"]), tbox, objects)
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    top5 = np.mean([not any(int(r["correct"]) for r in guesses) for guesses in by_image.values()])
    top1 = np.mean([not int(guesses[0]["correct"]) for guesses in by_image.values()])
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["n_images"] == N
    assert summary["top5_loc_error"] == pytest.approx(top5) and summary["top1_loc_error"] == pytest.approx(top1)
    assert summary["top5_cls_error"] <= summary["top1_cls_error"] <= 0.25       # the network is 99% accurate
    assert 0 <= summary["pointing_box"] <= summary["pointing_box_tolerant"] <= 1
    assert "pointing_mask" not in summary and "pointing" not in summary                # no masks in this format
    top5_threshold = np.mean([not any(int(r["threshold_correct"]) for r in g) for g in by_image.values()])
    assert summary["top5_loc_error_threshold"] == pytest.approx(top5_threshold)
    assert summary["maxboxacc_v2_chosen_on"] == "the test images (optimistic)"
    assert 0 <= summary["maxboxacc_v2"] <= 1 and set(summary["maxboxacc_v2_thresholds"]) == {"0.3", "0.5", "0.7"}
    # the same guesses with a centred square of the mean object size instead of the GraphCut box
    side = np.mean([np.sqrt((b[2] - b[0]) * (b[3] - b[1])) for objs in truth.values() for _, b in objs])
    s0 = int(round((64 - side) / 2))
    centred = (s0, s0, s0 + int(round(side)), s0 + int(round(side)))
    baseline = np.mean([not any(E.is_correct(int(r["class"]), centred, truth[name]) for r in guesses)
                        for name, guesses in by_image.items()])
    assert summary["top5_loc_error"] < baseline, (summary["top5_loc_error"], baseline)


def test_map_thresholds_chosen_on_a_held_out_run(data, reference, tmp_path, capsys):
    """--heldout: MaxBoxAccV2's map thresholds come from another run's images, never the test images."""
    from saliency import box_accuracy as B
    held = tmp_path / "held"
    assert call("make_shapes_dataset", "--n", 4, "--seed", 7, "--out", held) == 0
    assert call("evaluate_localisation", *args(held, tmp_path / "h", "--scheduler", "synchronous", "--top", 1)) == 0
    run = args(data, tmp_path / "out", "--scheduler", "synchronous", "--top", 1, "--heldout", tmp_path / "h")
    capsys.readouterr()
    assert call("evaluate_localisation", *run) == 0
    printed = capsys.readouterr().out
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["maxboxacc_v2_chosen_on"] == "held-out images" and s["maxboxacc_v2_n_heldout"] == 4
    assert "chosen on 4 held-out images" in printed and "optimistic" not in printed
    module = load_script("evaluate_localisation")
    curves = [r["iou_curve"] for f in sorted((tmp_path / "h" / "shards" / "gradient").glob("0*.json"))
              for r in module.from_json(f.read_text())]
    assert len(curves) == 4 and all(len(c) == len(B.MAP_THRESHOLDS) for c in curves)   # the runs decoded
    best = [float(B.MAP_THRESHOLDS[a.argmax()]) for a in B.box_accuracy(curves)]    # the held-out's best
    assert list(s["maxboxacc_v2_thresholds"].values()) == pytest.approx(best)
    optimistic = json.loads((reference / "summary.json").read_text())
    assert s["maxboxacc_v2"] <= optimistic["maxboxacc_v2"]                      # the test set's own best is the max
    # the test images themselves are refused as held-out images
    assert call("evaluate_localisation", *args(data, tmp_path / "o2", "--scheduler", "synchronous",
                                               "--heldout", reference)) == 2
    assert "holds test images" in one_error_line(capsys.readouterr().err)


def test_local_cluster_gives_the_same_tables(data, reference, tmp_path):
    """The default: a local Dask cluster (here 2 worker processes), as a real program."""
    proc = subprocess_run("evaluate_localisation", *args(data, tmp_path, "--workers", 2, "--shard-size", 4))
    assert proc.returncode == 0, proc.stderr
    assert "images: 100%" in proc.stderr                                     # the progress bar
    assert tables(tmp_path) == tables(reference)
    no_temporary_files(tmp_path)


def test_interrupted_run_resumes_to_the_same_tables(data, reference, tmp_path, monkeypatch):
    calls = []
    real = E.evaluate_shard

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(E, "evaluate_shard", interrupted)
    run = args(data, tmp_path, "--scheduler", "synchronous", "--shard-size", 3)
    assert call("evaluate_localisation", *run) == 130
    assert sorted(p.name for p in (tmp_path / "shards" / "gradient").iterdir()) == ["00000.json", "00001.json"]
    assert not (tmp_path / "results.csv").exists()
    no_temporary_files(tmp_path)
    monkeypatch.setattr(E, "evaluate_shard", real)
    assert call("evaluate_localisation", *run) == 2                          # refuses to mix runs unasked
    assert call("evaluate_localisation", *run, "--resume", "--top", 3) == 2  # other settings
    calls.clear()
    monkeypatch.setattr(E, "evaluate_shard", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert call("evaluate_localisation", *run, "--resume") == 0
    assert len(calls) == 2                                                   # only the two missing shards
    assert tables(tmp_path) == tables(reference)


def test_ctrl_c_in_a_terminal_is_one_line_and_the_run_resumes(data, reference, tmp_path):
    """A terminal sends Ctrl-C to the whole process group: the script and the local cluster's worker
    processes. One line, "interrupted", exit status 130, no worker's traceback (Dask's CancelledError,
    KeyboardInterrupt); the finished shards stay for --resume."""
    run = [str(a) for a in args(data, tmp_path, "--workers", 2, "--shard-size", 2)]
    child = subprocess.Popen([sys.executable, str(SCRIPTS / "evaluate_localisation.py"), *run], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    shards = tmp_path / "shards" / "gradient"
    try:
        deadline = time.monotonic() + 120
        while not list(shards.glob("0*.json")) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGINT)                                   # Ctrl-C in a terminal
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("images:")]  # less the bar
    assert child.returncode == 130 and said == ["evaluate_localisation.py: interrupted"], err
    finished = len(list(shards.glob("0*.json")))
    assert 1 <= finished < N // 2, finished
    assert not (tmp_path / "results.csv").exists()
    no_temporary_files(tmp_path)
    assert call("evaluate_localisation", *run, "--resume", "--scheduler", "synchronous") == 0
    assert tables(tmp_path) == tables(reference)


def test_a_killed_worker_loses_nothing(data, reference, tmp_path):
    """A cluster at --scheduler ADDRESS; one of its 2 worker processes is killed after the first shard
    is written. The first 6 images, one shard each, must come out as in the reference run."""
    from dask.distributed import Client, LocalCluster
    module = load_script("evaluate_localisation")
    n = 6
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=module.thread_env(2)) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        result = {}
        run = [str(a) for a in args(data, tmp_path, "--scheduler", cluster.scheduler_address, "--shard-size", 1,
                                    "--limit", n)]
        thread = threading.Thread(target=lambda: result.setdefault("code", module.main(run)))
        thread.start()
        shards = tmp_path / "shards" / "gradient"
        deadline = time.monotonic() + 120
        while not (shards.exists() and any(shards.glob("0*.json"))) and time.monotonic() < deadline:
            time.sleep(0.02)
        finished = len(list(shards.glob("0*.json")))
        os.kill(pids[0], signal.SIGKILL)                                       # a worker dies mid-run
        thread.join(timeout=300)
    assert 1 <= finished < n, "the worker was not killed mid-run"
    assert result.get("code") == 0
    assert len(list(shards.glob("*.json"))) == n                              # every shard once
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows == tables(reference)[0].splitlines()[:1 + 5 * n]             # header + 5 guesses per image
    assert json.loads((tmp_path / "summary.json").read_text())["n_images"] == n
    no_temporary_files(tmp_path)


def test_ten_crops_and_several_methods(data, tmp_path):
    run = ["--images", data / "images", "--annotations", data / "annotations", "--out", tmp_path,
           "--crops", 10, "--top", 2, "--limit", 2, "--method", "gradient,guided", "--scheduler", "synchronous"]
    assert call("evaluate_localisation", *run) == 0
    truth = {i.image_id: i.objects for i in datasets.read_dataset(data / "images", data / "annotations",
                                                                  shapes.CLASSES)}
    for method in ("gradient", "guided"):
        rows = list(csv.DictReader((tmp_path / method / "results.csv").open()))
        assert [(r["image"], r["rank"]) for r in rows] == [("shapes_00000", "1"), ("shapes_00000", "2"),
                                                           ("shapes_00001", "1"), ("shapes_00001", "2")]
        for r in rows:
            box = tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1"))
            assert int(r["correct"]) == E.is_correct(int(r["class"]), box, truth[r["image"]])
        s = json.loads((tmp_path / method / "summary.json").read_text())
        assert s["n_images"] == 2 and s["crops"] == 10 and s["top5_loc_error"] is None   # 2 guesses only
    assert (tmp_path / "methods.png").stat().st_size > 1000
    assert (tmp_path / "methods.csv").read_text().splitlines()[0].startswith("method,top1_loc_error")


@pytest.mark.parametrize("extra,message", [
    (("--annotations", "nowhere"), "nowhere: no such folder of XML files or CSV file"),
    (("--method", "gradient,bogus"), "--method: unknown bogus"),
    (("--method", "smoothgrad", "--crops", 10), "--crops 10 is not available with --method smoothgrad"),
    (("--weights", "missing.h5"), "missing.h5"),
])
def test_bad_input_is_one_line(data, tmp_path, capsys, extra, message):
    run = ["--images", data / "images", "--annotations", data / "annotations", "--out", tmp_path,
           "--scheduler", "synchronous", *extra]
    assert call("evaluate_localisation", *run) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "results.csv").exists()


def test_an_unreadable_image_stops_the_run_with_one_line_and_keeps_the_shards(data, tmp_path, capsys):
    import shutil
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "images" / "shapes_00002.png").write_bytes(b"not a png")
    run = ["--images", copy / "images", "--annotations", copy / "annotations", "--out", tmp_path / "out",
           "--crops", 1, "--top", 1, "--shard-size", 2, "--scheduler", "synchronous"]
    assert call("evaluate_localisation", *run) == 2
    assert "shapes_00002.png: not an image file" in one_error_line(capsys.readouterr().err)
    assert [p.name for p in (tmp_path / "out" / "shards" / "gradient").iterdir()] == ["00000.json"]
    assert not (tmp_path / "out" / "results.csv").exists()


def test_each_local_worker_gets_its_share_of_the_cores(monkeypatch):
    """The local cluster's workers split the cores: the engine's own threads (MINIGRAD_THREADS, else each
    worker would size itself to the cores free when it starts), the BLAS's and Numba's."""
    module = load_script("evaluate_localisation")
    monkeypatch.setattr(module, "CORES", 8)
    assert module.thread_env(2) == dict.fromkeys(
        ("MINIGRAD_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"), "4")
    assert module.thread_env(16)["MINIGRAD_THREADS"] == "1"


def test_local_workers_keep_freed_memory_as_the_scripts_do():
    """The local cluster's workers start with glibc's malloc told to keep freed memory (``WORKER_MALLOC``,
    set before each worker process starts), where Dask's default hands back all above 64 KB; and
    with their share of the cores."""
    import argparse
    module = load_script("evaluate_localisation")
    with module.dask_client(argparse.Namespace(scheduler=None, workers=1)) as client:
        seen = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_",
                                                                  "MINIGRAD_THREADS")})
    assert list(seen.values()) == [{"MALLOC_TRIM_THRESHOLD_": str(2**31 - 1), "MALLOC_MMAP_MAX_": "0",
                                    "MINIGRAD_THREADS": str(module.CORES)}]
