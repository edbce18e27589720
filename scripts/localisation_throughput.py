#!/usr/bin/env python
"""How fast evaluate_localisation.py runs, and how long ILSVRC-2012 val would take.

    python scripts/localisation_throughput.py --out out/throughput        # a few minutes on 2 cores

1. Writes a shapes set of --n images and scores it with evaluate_localisation.py's pipeline on a local
   Dask cluster of 1, then 2, worker processes (--crops 10, --top 5, the shipped network), and reports
   images per second, cluster start-up included.
2. Times the unit of work of the paper's protocol at 224 x 224 with VGG16 and with ResNet-50 (--arch;
   random weights: the network's speed does not depend on the values): for one image of 500 x 375
   (resized to 341 x 256), the 10-crop class scores, then for one class the 10-crop saliency map and
   GMM + GraphCut + box, on a one-worker cluster whose worker has the threads it would have among
   --workers workers. It projects ``50,000 * (scores + 5 * (map + GraphCut))`` per worker for
   ILSVRC-2012 val (top 5, 10 crops).
Writes OUT/throughput.json and prints a table.
"""
import json
import os
import tempfile
import time
from pathlib import Path

from _common import ArgumentParser, output_folder, positive_int, run
from models.files import atomic_path

ILSVRC_VAL = 50_000


def parse_args(argv=None):
    p = ArgumentParser(description="Measure images per second of evaluate_localisation.py with 1 and 2 "
                                   "workers on a shapes set, and project the time of ILSVRC-2012 val "
                                   "(50,000 images, top 5, 10 crops) with VGG16 and ResNet-50 at 224.")
    p.add_argument("--n", type=positive_int, default=40, help="shapes images (default 40)")
    p.add_argument("--workers", type=positive_int, default=2, help="the largest worker count to try (default 2)")
    p.add_argument("--arch", default="vgg16,resnet50",
                   help="networks of the projection, comma-separated (default vgg16,resnet50)")
    p.add_argument("--no-shapes", action="store_true", help="only the projection, not the shapes set's rate")
    p.add_argument("--size", type=int, default=224, help="its input size (default 224; resize to 256/224 of it)")
    p.add_argument("--repeats", type=positive_int, default=2,
                   help="timings of the projection's unit after a warm-up, best kept (default 2)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    return p.parse_args(argv)


def shapes_rate(data, workers, out):
    """Images per second of the whole command on a local cluster of ``workers`` processes."""
    import evaluate_localisation
    argv = ["--images", str(data / "images"), "--annotations", str(data / "annotations"), "--out", str(out),
            "--crops", "10", "--top", "5", "--workers", str(workers), "--shard-size", "4"]
    t0 = time.perf_counter()
    evaluate_localisation.main(argv)
    return time.perf_counter() - t0


def time_unit(arch, size, repeats):
    """Seconds for the 10-crop scores of one image, and for one class's 10-crop map + GraphCut box
    (run on a Dask worker). Random weights, a 500 x 375 shapes image."""
    import numpy as np

    import models
    from models import preprocess, shapes
    from saliency import evaluation as E
    from saliency.localise import localise
    model = models.build(arch, input_size=size, seed=0).eval()
    model.meta = dict(model.meta, resize=int(round(size * 256 / 224)), crop=size)
    rng = np.random.default_rng(0)
    rgb = np.asarray(preprocess.Image.fromarray(shapes.make_sample(rng, size=256)[0]).resize((500, 375)))
    frame = preprocess.resize_shorter(rgb, model.meta["resize"])
    x = preprocess.normalise(frame, model.meta)
    best_scores = best_unit = float("inf")
    for k in range(repeats + 1):                      # the first pass (compilation, allocation) is not kept
        t0 = time.perf_counter()
        logits = E.crop_mean_logits(model, x, 10)
        t1 = time.perf_counter()
        (smap,), _ = E.frame_maps(model, x, [int(np.argmax(logits))], "gradient", 10)
        localise(frame, smap)
        t2 = time.perf_counter()
        if k:
            best_scores, best_unit = min(best_scores, t1 - t0), min(best_unit, t2 - t1)
    return {"frame": list(frame.shape[:2]), "scores_s": best_scores, "map_graphcut_s": best_unit,
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}


def main(argv=None):
    args = parse_args(argv)
    from models.load import standard_names
    archs = [a.strip().lower() for a in args.arch.split(",") if a.strip()]
    unknown = [a for a in archs if a not in standard_names()]
    if unknown or not archs:
        raise ValueError(f"--arch: unknown {', '.join(unknown) or '(none)'}; use {', '.join(standard_names())}")
    from dask.distributed import Client, LocalCluster

    import evaluate_localisation
    from make_shapes_dataset import write_dataset
    out = Path(args.out)
    os.environ.update(evaluate_localisation.WORKER_MALLOC)      # for the workers started below, as the script's
    report = {"shapes": {"n_images": args.n, "crops": 10, "top": 5}, "projection": {}}
    if not args.no_shapes:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "shapes"
            write_dataset(data, args.n, seed=31337)
            for w in range(1, args.workers + 1):
                seconds = shapes_rate(data, w, Path(tmp) / f"run{w}")
                report["shapes"][f"{w}_workers"] = {"seconds": seconds, "images_per_s": args.n / seconds}
                print(f"{w} worker(s): shapes {args.n / seconds:.2f} images/s")
    for arch in archs:
        for w in range(1, args.workers + 1):
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                              env=evaluate_localisation.thread_env(w)) as cluster, Client(cluster) as client:
                unit = client.submit(time_unit, arch, args.size, args.repeats, pure=False).result()
            per_image = unit["scores_s"] + 5 * unit["map_graphcut_s"]
            unit.update(per_image_s=per_image, ilsvrc_val_hours_per_worker=ILSVRC_VAL * per_image / 3600,
                        ilsvrc_val_hours_all_workers=ILSVRC_VAL * per_image / 3600 / w)
            report["projection"][f"{arch}_{w}_workers"] = unit
            print(f"{w} worker(s), {arch} at {args.size}: scores {unit['scores_s']:.1f} s + 5 x (map + GraphCut "
                  f"{unit['map_graphcut_s']:.1f} s) = {per_image:.1f} s per image -> ILSVRC-2012 val "
                  f"{unit['ilsvrc_val_hours_per_worker']:.0f} h per worker, {unit['ilsvrc_val_hours_all_workers']:.0f} h "
                  f"with {w}")
    with atomic_path(out / "throughput.json") as tmp, open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out / 'throughput.json'}")
    return 0


if __name__ == "__main__":
    run(main)
