#!/usr/bin/env python
"""The ILSVRC localisation protocol on a data set, on this machine's cores or on a Dask cluster.

    python scripts/evaluate_localisation.py --images val/images --annotations val/annotations \\
        --weights weights/vgg16.h5 --out out/ilsvrc                   # 10 crops, top 5, all cores
    python scripts/evaluate_localisation.py ... --scheduler tcp://HOST:8786      # an existing cluster
    python scripts/evaluate_localisation.py ... --resume                          # after an interruption

For each image: the network's top-5 classes, for each a saliency map (10 crops averaged), GMM +
GraphCut + largest component + box in the original image's pixels; a guess is correct when its class
is right and its box has IoU >= 0.5 with a ground-truth box of that class (the devkit's rule).
The same maps are also boxed without colour (the largest component above the map's 95% quantile:
the threshold box). Writes OUT/results.csv (one row per image and guess, both boxes) and
OUT/summary.json: top-1/top-5 localisation errors of both boxes, classification errors,
``pointing_box`` (the map's maximum inside a ground-truth box, strict and with TorchRay's tolerance)
and MaxBoxAccV2 (Choe et al. 2020) of the thresholded maps, its map thresholds chosen on the run
named by --heldout (an earlier run of this script on other images), else on these images
(optimistic, and said so). With several --method values, each method's files go to OUT/METHOD/,
plus OUT/methods.csv and OUT/methods.png.

The images are split into shards; each finished shard is written to OUT/shards/ at once (atomically),
so --resume continues an interrupted run, and the tables are built from the shards at the end. Dask
runs the shards: a local cluster of --workers processes (each its share of the cores) by default, the
cluster at --scheduler ADDRESS (its workers must see the images and weights at the same paths), or
this process with --scheduler synchronous. A worker that dies loses only its running shards, which Dask
runs again elsewhere. An OUT that holds another run's files is refused unless --resume (its shards
are kept) or --overwrite (removed first). Ctrl-C stops the run: one line, "interrupted", status 130.
"""
import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import signal
import threading
from pathlib import Path

from _common import ArgumentParser, add_device_arg, add_overwrite_arg, add_weights_arg, check_device, claim_outputs, \
    load_classifier, output_folder, run
from models.files import atomic_path
from saliency.maps import METHODS

SUMMARY_KEYS = ("n_images", "top1_loc_error", "top5_loc_error", "top1_loc_error_threshold",
                "top5_loc_error_threshold", "top1_cls_error", "top5_cls_error", "pointing_box",
                "pointing_box_tolerant", "maxboxacc_v2", "maxboxacc_v2_by_iou", "maxboxacc_v2_thresholds",
                "maxboxacc_v2_chosen_on", "maxboxacc_v2_n_heldout")
COLUMNS = ("image", "rank", "class", "class_name", "score", "x0", "y0", "x1", "y1", "iou", "correct",
           "threshold_x0", "threshold_y0", "threshold_x1", "threshold_y1", "threshold_iou", "threshold_correct")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
LOCALISERS = ("graphcut", "threshold")            # both, on the same maps
OUTPUTS = ("shards/run.json", "shards/*/*.json", "results.csv", "summary.json", "methods.csv", "methods.png",
           *(f"{m}/{name}" for m in METHODS for name in ("results.csv", "summary.json")))


def parse_args(argv=None):
    p = ArgumentParser(description="Score weakly supervised localisation by the ILSVRC protocol "
                                   "(top-5 guesses, IoU >= 0.5) on a folder of images with "
                                   "Pascal-VOC XML or LOC_val_solution-style CSV boxes.")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    p.add_argument("--annotations", required=True, metavar="DIR_OR_CSV",
                   help="folder of XML files (one per image, same stem) or a LOC_val_solution-style CSV")
    p.add_argument("--synsets", metavar="FILE", default=None,
                   help="LOC_synset_mapping.txt: the WordNet ids of the network's classes by index, for "
                        "weights that carry none (default: that file beside a CSV, if present)")
    p.add_argument("--box-origin", type=int, choices=(0, 1), default=0,
                   help="the annotations' first pixel index: 0 (ILSVRC, default) or 1 (Pascal VOC)")
    add_weights_arg(p)
    p.add_argument("--method", default="gradient",
                   help=f"one or more of {','.join(METHODS)}, comma-separated (default gradient, the paper)")
    p.add_argument("--crops", type=int, choices=(1, 10), default=10,
                   help="10: maps and scores averaged over the 10 crops (the paper, default); 1: the centre crop")
    p.add_argument("--top", type=int, default=5, help="guesses per image (default 5)")
    p.add_argument("--smooth-n", type=int, default=25, help="SmoothGrad samples (default 25)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://HOST:PORT), or 'synchronous' to run in this "
                        "process; default: a local cluster of --workers processes")
    p.add_argument("--workers", type=int, default=CORES,
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--shard-size", type=int, default=20, help="images per shard (default 20)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (by name)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its finished shards")
    p.add_argument("--heldout", metavar="DIR", default=None,
                   help="the --out of a finished run of this script on held-out images (same weights, crops, "
                        "methods): MaxBoxAccV2's map thresholds are chosen there (default: on these images, "
                        "optimistic)")
    add_overwrite_arg(p)
    add_device_arg(p)
    return p.parse_args(argv)


def check_args(args):
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--method: unknown {', '.join(unknown) or 'empty'}; choose from {', '.join(METHODS)}")
    if args.crops == 10 and "smoothgrad" in methods:
        raise ValueError("--crops 10 is not available with --method smoothgrad (use --crops 1)")
    for name in ("top", "smooth_n", "workers", "shard_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    if args.resume and args.overwrite:
        raise ValueError("--resume keeps the finished shards and --overwrite removes them: choose one")
    return list(dict.fromkeys(methods))


# ------------------------------------------------------------------------------- shards
def fingerprint(args, weights, items, methods):
    """What a resumed run must share with the run it continues."""
    stat = os.stat(weights)
    ids = hashlib.sha256("\n".join(f"{i.image_id} {i.objects}" for i in items).encode()).hexdigest()
    return {"weights": str(weights), "weights_bytes": stat.st_size, "weights_mtime_ns": stat.st_mtime_ns,
            "methods": methods, "crops": args.crops, "top": args.top, "smooth_n": args.smooth_n,
            "shard_size": args.shard_size, "images": len(items), "images_sha256": ids,
            "localisers": list(LOCALISERS)}


def prepare_shards(out, run_info, resume, overwrite):
    """Start the run's record in OUT/shards/run.json. With ``resume``, an earlier record must match
    ``run_info`` and its shards are kept; otherwise the files of an earlier run are refused, or with
    ``overwrite`` removed (claim_outputs)."""
    shards = out / "shards"
    info_path = shards / "run.json"
    if resume and info_path.exists():
        try:
            old = json.loads(info_path.read_text())
        except (OSError, ValueError):
            raise ValueError(f"{info_path}: unreadable; remove {shards} to start again") from None
        changed = [k for k in run_info if old.get(k) != run_info[k]]
        if changed:
            raise ValueError(f"--resume: {out} was run with other {', '.join(changed)}; use another --out")
    else:
        claim_outputs(out, OUTPUTS, overwrite, hint=", --resume to continue it" if info_path.exists() else "")
    write_text(info_path, json.dumps(run_info, indent=1))


def shard_file(out, method, k):
    return out / "shards" / method / f"{k:05d}.json"


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def to_json(records):
    """The records, each ``iou_curve`` as runs [value to 6 decimals, length] (about 255 runs of 1000)."""
    return json.dumps([{k: [[round(v, 6), len(list(g))] for v, g in itertools.groupby(v)] if k == "iou_curve" and v
                        else v for k, v in r.items() if k not in ("mask", "guesses")} for r in records])


def from_json(text):
    records = json.loads(text)
    for r in records:
        r["objects"] = [(int(c), tuple(b)) for c, b in r["objects"]]
        for guesses in r["by_localiser"].values():
            for g in guesses:
                g["box"] = tuple(g["box"])
        r["guesses"] = r["by_localiser"][LOCALISERS[0]]
        r["iou_curve"] = r.get("iou_curve") and [v for v, n in r["iou_curve"] for _ in range(n)]
    return records


def heldout_records(folder, run_info, methods, items):
    """Each method's records of the finished run in ``folder`` (--heldout), refused unless it shares
    this run's weights, crops, SmoothGrad samples and boxes, and none of its images is a test image."""
    info_path = Path(folder) / "shards" / "run.json"
    try:
        old = json.loads(info_path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"--heldout {folder}: not the --out of a run of this script ({info_path})") from None
    changed = [k for k in ("weights", "weights_bytes", "weights_mtime_ns", "crops", "smooth_n", "localisers")
               if old.get(k) != run_info[k]] + [m for m in methods if m not in old.get("methods", ())]
    if changed:
        raise ValueError(f"--heldout {folder}: run with other {', '.join(changed)}")
    files = [shard_file(Path(folder), m, k) for m in methods for k in range(-(-old["images"] // old["shard_size"]))]
    if not all(f.exists() for f in files):
        raise ValueError(f"--heldout {folder}: unfinished; finish it with --resume")
    records = {m: [r for f in files if f.parent.name == m for r in from_json(f.read_text())] for m in methods}
    test = {(i.image_id, tuple((int(c), tuple(b)) for c, b in i.objects)) for i in items}
    shared = sorted({r["image"] for rs in records.values() for r in rs if (r["image"], tuple(r["objects"])) in test})
    if shared or old["images_sha256"] == run_info["images_sha256"]:
        raise ValueError(f"--heldout {folder}: holds test images ({', '.join(shared[:3]) or 'all'}): choose the "
                         "map thresholds on other images")
    return records


# ------------------------------------------------------------------------------ running
def thread_env(workers):
    """Each worker's share of the cores for the engine, BLAS and Numba, so workers do not oversubscribe them."""
    return dict.fromkeys(("MINIGRAD_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                          "NUMBA_NUM_THREADS"), str(max(1, CORES // workers)))


#: glibc's malloc in the local workers, set before each starts: freed memory kept for reuse as in every script
#: (_common.keep_freed_memory), not Dask's default (all over 64 KB handed back: fresh pages for every array).
#: Dask takes these from os.environ before its own pre-spawn-environ, so they go there.
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(2**31 - 1), "MALLOC_MMAP_MAX_": "0"}


@contextlib.contextmanager
def dask_client(args):
    """The Dask client of the run: None for ``--scheduler synchronous``, else connected to the scheduler
    address, or to a local cluster of ``--workers`` processes started here; closed at the end."""
    if args.scheduler == "synchronous":
        yield None
        return
    from dask.distributed import Client, LocalCluster
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler, timeout="30s")
    else:
        os.environ.update(WORKER_MALLOC)                        # inherited by the workers started here
        with ctrl_c_ignored():                                 # ... which leave Ctrl-C to this process
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=thread_env(args.workers),
                                   silence_logs=logging.CRITICAL)  # a failed shard is reported once, below
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_shards(todo, client, weights, device, settings, on_done):
    """Evaluate the shards ``todo`` [(method, k, items)] on ``client`` (None: in this process), calling
    ``on_done(method, k, records)`` in this process as each finishes."""
    from saliency.evaluation import evaluate_shard
    if client is None:
        for method, k, items in todo:
            on_done(method, k, evaluate_shard(items, weights, device, method=method, **settings))
        return
    from dask.distributed import as_completed
    token = run_token(weights, settings)
    futures = {client.submit(evaluate_shard, items, weights, device, method=method, **settings,
                             key=f"deepinside-shard-{method}-{k}-{token}"): (method, k)
               for method, k, items in todo}
    for future in as_completed(futures):
        method, k = futures[future]
        on_done(method, k, future.result())


@contextlib.contextmanager
def ctrl_c_ignored():
    """SIGINT ignored while the block runs (in the main thread). A terminal sends Ctrl-C to its whole
    process group; processes started in the block inherit the ignoring (it survives ``exec``), so the
    local workers leave Ctrl-C to this process, which stops the run and closes the cluster with one
    line, "interrupted". A Ctrl-C while the cluster starts (a few seconds) is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_token(weights, settings):
    return hashlib.sha256(repr((str(weights), sorted(settings.items()))).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------ outputs
def results_csv(records, classes):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in records:
        for g, t in zip(r["guesses"], r["by_localiser"]["threshold"]):
            w.writerow([r["image"], g["rank"], g["class"], classes[g["class"]], f"{g['score']:.4f}", *g["box"],
                        f"{g['iou']:.4f}", int(g["correct"]), *t["box"], f"{t['iou']:.4f}", int(t["correct"])])
    return buf.getvalue()


def summary(records, top, heldout=None):
    from saliency.evaluation import summarise
    s = summarise(records, heldout)
    if top < 5:                                  # fewer guesses than top-5 needs
        s["top5_loc_error"] = s["top5_loc_error_threshold"] = s["top5_cls_error"] = None
    return {k: s.get(k) for k in SUMMARY_KEYS}


def write_method(folder, records, classes, top, settings, heldout=None):
    s = dict(summary(records, top, heldout), method=settings["method"], crops=settings["crops"], top=top)
    write_text(folder / "results.csv", results_csv(records, classes))
    write_text(folder / "summary.json", json.dumps(s, indent=1) + "\n")
    return s


def methods_outputs(out, rows):
    """OUT/methods.csv and a bar chart OUT/methods.png of the per-method table (``methods_figure``)."""
    import matplotlib.pyplot as plt
    keys = ("top1_loc_error", "top5_loc_error", "top5_loc_error_threshold", "pointing_box", "pointing_box_tolerant",
            "maxboxacc_v2")
    write_text(out / "methods.csv", "method," + ",".join(keys) + "\n" + "".join(
        r["method"] + "," + ",".join("" if r[k] is None else f"{r[k]:.4f}" for k in keys) + "\n" for r in rows))
    fig = methods_figure(rows)
    with atomic_path(out / "methods.png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


#: The two panels of methods.png: errors (lower is better) and hit rates (higher is better) share no axis.
PANELS = (("localisation error (lower is better)", ("top1_loc_error", "top5_loc_error", "top5_loc_error_threshold"),
           ("top-1", "top-5", "top-5, threshold box")),
          ("hits (higher is better)", ("pointing_box", "pointing_box_tolerant", "maxboxacc_v2"),
           ("pointing_box", "pointing_box, tolerant", "MaxBoxAccV2")))


def methods_figure(rows):
    """The per-method table as two bar panels side by side, each with its legend below its axes (no
    bar hidden under it); a missing value (None) is no bar."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    x = np.arange(len(rows))
    for ax, (title, keys, labels) in zip(axes, PANELS):
        width = 0.8 / len(keys)
        for j, (k, label) in enumerate(zip(keys, labels)):
            ax.bar(x + (j - (len(keys) - 1) / 2) * width, [np.nan if r[k] is None else r[k] for r in rows], width,
                   label=label)
        ax.set_xticks(x, [r["method"] for r in rows])
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction of images")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.suptitle(f"localisation by method ({rows[0]['n_images']} images)", fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    methods = check_args(args)
    check_device(args.device)
    from tqdm import tqdm

    from models import datasets

    out = Path(args.out)                                        # (a file there: refused by output_folder)
    model = load_classifier(args.weights, args.device)       # here: check the file before any worker does
    synsets = args.synsets
    if synsets is None and os.path.isfile(args.annotations):
        beside = Path(args.annotations).with_name("LOC_synset_mapping.txt")
        synsets = str(beside) if beside.exists() else None
    items = datasets.read_dataset(args.images, args.annotations, model.classes, model.wnids, synsets,
                                  args.box_origin)
    items = items[:args.limit] if args.limit else items
    weights = Path(args.weights).resolve()
    settings = {"crops": args.crops, "top": args.top, "smooth_n": args.smooth_n, "localiser": LOCALISERS}
    run_info = fingerprint(args, weights, items, methods)
    heldout = heldout_records(args.heldout, run_info, methods, items) if args.heldout else {}
    shards = [[(i.image_id, i.path, i.objects) for i in items[s:s + args.shard_size]]
              for s in range(0, len(items), args.shard_size)]
    with dask_client(args) as client:                           # connected before an earlier run is removed
        prepare_shards(out, run_info, args.resume, args.overwrite)
        todo = [(m, k, sh) for m in methods for k, sh in enumerate(shards) if not shard_file(out, m, k).exists()]
        done = len(items) * len(methods) - sum(len(sh) for _, _, sh in todo)
        with tqdm(total=len(items) * len(methods), initial=done, desc="images", unit="image") as bar:
            def on_done(method, k, records):
                write_text(shard_file(out, method, k), to_json(records))
                bar.update(len(records))
            run_shards(todo, client, weights, args.device, settings, on_done)

    rows = []
    for m in methods:
        records = [r for k in range(len(shards)) for r in from_json(shard_file(out, m, k).read_text())]
        folder = out if len(methods) == 1 else out / m
        s = write_method(folder, records, model.classes, args.top, dict(settings, method=m), heldout.get(m))
        rows.append(s)
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"          # noqa: E731
        chosen = (f"map thresholds {'/'.join(f'{t:.3f}' for t in s['maxboxacc_v2_thresholds'].values())} at IoU "
                  f"0.3/0.5/0.7, chosen on {s['maxboxacc_v2_n_heldout']} held-out images in {args.heldout}"
                  if args.heldout and s["maxboxacc_v2_thresholds"] else "threshold chosen on the test set: optimistic")
        print(f"{m}: {s['n_images']} images; localisation error top-1 {fmt(s['top1_loc_error'])}, "
              f"top-5 {fmt(s['top5_loc_error'])} (threshold box: top-1 {fmt(s['top1_loc_error_threshold'])}, "
              f"top-5 {fmt(s['top5_loc_error_threshold'])}); classification error top-1 "
              f"{fmt(s['top1_cls_error'])}, top-5 {fmt(s['top5_cls_error'])}; pointing_box "
              f"{fmt(s['pointing_box'])} (with tolerance {fmt(s['pointing_box_tolerant'])}); MaxBoxAccV2 "
              f"{fmt(s['maxboxacc_v2'])} ({chosen}) -> {folder / 'summary.json'}")
    if len(methods) > 1:
        methods_outputs(out, rows)
        print(f"wrote {out / 'methods.csv'} and {out / 'methods.png'}")
    return 0


if __name__ == "__main__":
    run(main)
