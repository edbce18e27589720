#!/usr/bin/env python
"""The ILSVRC localisation protocol on a data set, on this machine's cores or on a Dask cluster.

    python scripts/evaluate_localisation.py --images val/images --annotations val/annotations \\
        --weights weights/vgg16.h5 --out out/ilsvrc                   # 10 crops, top 5, all cores
    python scripts/evaluate_localisation.py ... --scheduler tcp://HOST:8786      # an existing cluster
    python scripts/evaluate_localisation.py ... --resume                          # after an interruption

For each image: the network's top-5 classes, for each a saliency map (10 crops averaged), GMM +
GraphCut + largest component + box in the original image's pixels; a guess is correct when its class
is right and its box has IoU >= 0.5 with a ground-truth box of that class (the devkit's rule).
Writes OUT/results.csv (one row per image and guess) and OUT/summary.json (top-1/top-5 localisation
and classification errors, pointing game strict and with tolerance). With several --method values,
each method's files go to OUT/METHOD/, plus OUT/methods.csv and OUT/methods.png.

The images are split into shards; each finished shard is written to OUT/shards/ at once (atomically),
so --resume continues an interrupted run, and the tables are built from the shards at the end. Dask
(dask.distributed) runs the shards: a local cluster of --workers processes by default, the cluster
at --scheduler ADDRESS (its workers must see the images and weights at the same paths), or this
process alone with --scheduler synchronous. A worker that dies loses only its running shards, which
Dask runs again elsewhere. An OUT that holds another run's files is refused unless --resume (the same
run: its shards are kept) or --overwrite (they are removed first). Ctrl-C stops the run with one line,
"interrupted", and exit status 130; the finished shards stay for --resume.
"""
import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import signal
import threading
from pathlib import Path

from _common import add_device_arg, add_overwrite_arg, add_weights_arg, check_device, claim_outputs, \
    load_classifier, output_folder, run
from models.files import atomic_path

METHODS = ("gradient", "deconvnet", "guided", "smoothgrad")
SUMMARY_KEYS = ("n_images", "top1_loc_error", "top5_loc_error", "top1_cls_error", "top5_cls_error",
                "pointing", "pointing_tolerant")
COLUMNS = ("image", "rank", "class", "class_name", "score", "x0", "y0", "x1", "y1", "iou", "correct")
OUTPUTS = ("shards/run.json", "shards/*/*.json", "results.csv", "summary.json", "methods.csv", "methods.png",
           *(f"{m}/{name}" for m in METHODS for name in ("results.csv", "summary.json")))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Score weakly supervised localisation by the ILSVRC protocol "
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
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count(), help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--shard-size", type=int, default=20, help="images per shard (default 20)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (by name)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its finished shards")
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
            "shard_size": args.shard_size, "images": len(items), "images_sha256": ids}


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
    return json.dumps([{k: v for k, v in r.items() if k not in ("mask",)} for r in records])


def from_json(text):
    records = json.loads(text)
    for r in records:
        r["objects"] = [(int(c), tuple(b)) for c, b in r["objects"]]
        for g in r["guesses"]:
            g["box"] = tuple(g["box"])
    return records


# ------------------------------------------------------------------------------ running
def thread_env(workers):
    """Each worker's share of the cores for BLAS and Numba, so workers do not oversubscribe them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = str(max(1, cores // workers))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n, "NUMBA_NUM_THREADS": n}


def run_shards(todo, args, weights, settings, on_done):
    """Evaluate the shards ``todo`` [(method, k, items)], calling ``on_done(method, k, records)`` in
    this process as each finishes."""
    from saliency.evaluation import evaluate_shard
    if args.scheduler == "synchronous":
        for method, k, items in todo:
            on_done(method, k, evaluate_shard(items, weights, args.device, method=method, **settings))
        return
    from dask.distributed import Client, LocalCluster, as_completed
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler, timeout="30s")
    else:
        with ctrl_c_ignored():                                 # by the worker processes started here
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=thread_env(args.workers),
                                   silence_logs=logging.CRITICAL)  # a failed shard is reported once, below
        client = Client(cluster)
    try:
        token = run_token(weights, settings)
        futures = {client.submit(evaluate_shard, items, weights, args.device, method=method, **settings,
                                 key=f"deepinside-shard-{method}-{k}-{token}"): (method, k)
                   for method, k, items in todo}
        for future in as_completed(futures):
            method, k = futures[future]
            on_done(method, k, future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def ctrl_c_ignored():
    """SIGINT ignored while the block runs (in the main thread; elsewhere nothing changes).

    A terminal sends Ctrl-C to its whole process group, workers included. Processes started in the
    block inherit the ignoring (it survives ``exec``, and Python then installs no KeyboardInterrupt of
    its own), so the local cluster's workers leave Ctrl-C to this process, which stops the run and
    closes the cluster: one line, "interrupted", instead of every worker's traceback. A Ctrl-C while
    the cluster starts (a few seconds) is lost."""
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
        for g in r["guesses"]:
            w.writerow([r["image"], g["rank"], g["class"], classes[g["class"]], f"{g['score']:.4f}", *g["box"],
                        f"{g['iou']:.4f}", int(g["correct"])])
    return buf.getvalue()


def summary(records, top):
    from saliency.evaluation import summarise
    s = summarise(records)
    if top < 5:                                  # fewer guesses than top-5 needs
        s["top5_loc_error"] = s["top5_cls_error"] = None
    return {k: s[k] for k in SUMMARY_KEYS}


def write_method(folder, records, classes, top, settings):
    s = dict(summary(records, top), method=settings["method"], crops=settings["crops"], top=top)
    write_text(folder / "results.csv", results_csv(records, classes))
    write_text(folder / "summary.json", json.dumps(s, indent=1) + "\n")
    return s


def methods_outputs(out, rows):
    """OUT/methods.csv and a bar chart OUT/methods.png of the per-method table (``methods_figure``)."""
    import matplotlib.pyplot as plt
    keys = ("top1_loc_error", "top5_loc_error", "pointing", "pointing_tolerant")
    write_text(out / "methods.csv", "method," + ",".join(keys) + "\n" + "".join(
        r["method"] + "," + ",".join("" if r[k] is None else f"{r[k]:.4f}" for k in keys) + "\n" for r in rows))
    fig = methods_figure(rows)
    with atomic_path(out / "methods.png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


#: The two panels of methods.png: errors (lower is better) and pointing hit rates (higher is better)
#: do not share an axis.
PANELS = (("localisation error (lower is better)", ("top1_loc_error", "top5_loc_error"),
           ("top-1", "top-5")),
          ("pointing game hits (higher is better)", ("pointing", "pointing_tolerant"),
           ("pointing", "pointing, tolerant (15 px at 224)")))


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
        for j, (k, label) in enumerate(zip(keys, labels)):
            ax.bar(x + (j - 0.5) * 0.38, [np.nan if r[k] is None else r[k] for r in rows], 0.38, label=label)
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

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    model = load_classifier(args.weights, args.device)       # here: check the file before any worker does
    synsets = args.synsets
    if synsets is None and os.path.isfile(args.annotations):
        beside = Path(args.annotations).with_name("LOC_synset_mapping.txt")
        synsets = str(beside) if beside.exists() else None
    items = datasets.read_dataset(args.images, args.annotations, model.classes, model.wnids, synsets,
                                  args.box_origin)
    items = items[:args.limit] if args.limit else items
    weights = Path(args.weights).resolve()
    settings = {"crops": args.crops, "top": args.top, "smooth_n": args.smooth_n}
    prepare_shards(out, fingerprint(args, weights, items, methods), args.resume, args.overwrite)

    shards = [[(i.image_id, i.path, i.objects) for i in items[s:s + args.shard_size]]
              for s in range(0, len(items), args.shard_size)]
    todo = [(m, k, sh) for m in methods for k, sh in enumerate(shards) if not shard_file(out, m, k).exists()]
    done = len(items) * len(methods) - sum(len(sh) for _, _, sh in todo)
    with tqdm(total=len(items) * len(methods), initial=done, desc="images", unit="image") as bar:
        def on_done(method, k, records):
            write_text(shard_file(out, method, k), to_json(records))
            bar.update(len(records))
        run_shards(todo, args, weights, settings, on_done)

    rows = []
    for m in methods:
        records = [r for k in range(len(shards)) for r in from_json(shard_file(out, m, k).read_text())]
        folder = out if len(methods) == 1 else out / m
        rows.append(write_method(folder, records, model.classes, args.top, dict(settings, method=m)))
        s = rows[-1]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"          # noqa: E731
        print(f"{m}: {s['n_images']} images; localisation error top-1 {fmt(s['top1_loc_error'])}, "
              f"top-5 {fmt(s['top5_loc_error'])}; classification error top-1 {fmt(s['top1_cls_error'])}, "
              f"top-5 {fmt(s['top5_cls_error'])}; pointing {fmt(s['pointing'])} "
              f"(with tolerance {fmt(s['pointing_tolerant'])}) -> {folder / 'summary.json'}")
    if len(methods) > 1:
        methods_outputs(out, rows)
        print(f"wrote {out / 'methods.csv'} and {out / 'methods.png'}")
    return 0


if __name__ == "__main__":
    run(main)
