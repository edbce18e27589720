#!/usr/bin/env python
"""The paper's localisation claim, measured against ground truth on held-out shapes images.

    python scripts/localisation_benchmark.py                     # N = 500
    python scripts/localisation_benchmark.py --n 100 --seed 7 --csv out/localisation.csv

It runs the generic pipeline of ``evaluate_localisation.py`` (``saliency.evaluation.evaluate_image``,
centre crop) on generated images, but with the map of the true class (the weak label the paper
assumes) rather than the top-5 guesses, and adds what only a generated set can measure. For every
map method (gradient, deconvnet, guided backprop, SmoothGrad):
  pointing accuracy   the map's maximum falls inside the object's mask
  pointing, 15 px     ... or closer to it than TorchRay's tolerance, 15 pixels at 224 (4.3 at 64)
  localisation error  the box from GMM + GraphCut + largest component has IoU < 0.5 with the true box
                      (the paper's criterion, with the true class instead of the top-5 guesses)
  mask IoU            of that component with the true mask (the pixels the box came from)
and baselines: the whole image, a centred box, and each map thresholded at its 95% quantile without
GraphCut. Prints the model's accuracy on the same images, a table, and writes the CSV.
"""
import argparse
import csv
import io
import time
from pathlib import Path

import numpy as np

from _common import add_device_arg, add_weights_arg, check_device, load_model, non_negative_int, run
from _images import atomic_write
from make_shapes_dataset import BENCHMARK_SEED

METHODS = ("gradient", "deconvnet", "guided", "smoothgrad")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Measure weakly supervised localisation from saliency maps against "
                                            "the ground truth of generated shapes images.")
    add_weights_arg(p)
    p.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    p.add_argument("--seed", type=non_negative_int, default=BENCHMARK_SEED,
                   help=f"image seed (default {BENCHMARK_SEED})")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default all)")
    p.add_argument("--smooth-n", type=int, default=25, help="SmoothGrad samples per image (default 25)")
    p.add_argument("--batch", type=int, default=50, help="images per classification pass (default 50)")
    add_device_arg(p)
    return p.parse_args(argv)


def centred_box(h, w, frac):
    bh, bw = int(round(h * frac)), int(round(w * frac))
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    return (x0, y0, x0 + bw, y0 + bh)


def box_mask(box, h, w):
    m = np.zeros((h, w), bool)
    m[box[1]:box[3], box[0]:box[2]] = True
    return m


class Scores:
    """Per-image values of the measures for one row of the table."""

    def __init__(self):
        self.point, self.point_tol, self.err, self.iou = [], [], [], []

    def add(self, point, box, mask, true_box, true_mask):
        from saliency.evaluation import is_correct, pointing_hit, pointing_tolerance
        from saliency.localise import mask_iou
        tol = pointing_tolerance(*true_mask.shape)
        self.point.append(np.nan if point is None else float(pointing_hit(point, true_mask)))
        self.point_tol.append(np.nan if point is None else float(pointing_hit(point, true_mask, tol)))
        self.err.append(float(not is_correct(0, box, [(0, true_box)])))
        self.iou.append(float(mask_iou(mask, true_mask)))

    def add_guess(self, guess, true_box, true_mask):
        self.add(guess["point"], guess["box"], guess["mask"], true_box, true_mask)

    def row(self, name):
        def mean(v):
            v = np.asarray(v, float)
            return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        return {"method": name, "pointing_accuracy": mean(self.point), "pointing_tolerant": mean(self.point_tol),
                "localisation_error": mean(self.err), "mask_iou": mean(self.iou), "n": len(self.err)}


def write_csv(path, rows):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["method", "pointing_accuracy", "localisation_error", "mask_iou",
                                       "pointing_tolerant", "n"])
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def table(rows):
    w = max(len(r["method"]) for r in rows)
    lines = [f"| {'method':<{w}} | pointing accuracy | pointing, 15 px at 224 | localisation error | mask IoU |",
             f"|{'-' * (w + 2)}|-------------------|------------------------|--------------------|----------|"]
    for r in rows:
        pa, pt = ("—" if np.isnan(r[k]) else f"{r[k]:.3f}" for k in ("pointing_accuracy", "pointing_tolerant"))
        lines.append(f"| {r['method']:<{w}} | {pa:>17} | {pt:>22} | {r['localisation_error']:>18.3f} "
                     f"| {r['mask_iou']:>8.3f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods: unknown {unknown or 'empty'}; choose from {', '.join(METHODS)}")
    if args.n < 1 or args.batch < 1 or args.smooth_n < 1:
        raise ValueError("--n, --batch and --smooth-n must be at least 1")
    check_device(args.device)
    from tqdm import tqdm

    import minigrad as mg
    from models import preprocess, shapes
    from saliency.evaluation import evaluate_image

    t0 = time.perf_counter()
    model = load_model(args.weights, args.device)
    if list(model.classes) != list(shapes.CLASSES):
        raise ValueError(f"{args.weights}: the benchmark needs a shapes network (classes {shapes.CLASSES})")
    size = model.config.input_size[0]
    images, labels, masks, boxes = shapes.make_dataset(args.n, seed=args.seed, size=size)
    x = np.stack([preprocess.normalise(im, model.meta) for im in images])
    with mg.no_grad():
        pred = np.concatenate([mg.backend.to_numpy(model(mg.Tensor(mg.to_device(x[i:i + args.batch], args.device)))
                                                   .data).argmax(1) for i in range(0, args.n, args.batch)])
    accuracy = float((pred == labels).mean())
    print(f"top-1 accuracy on these {args.n} held-out images: {accuracy:.4f}")

    h, w = size, size
    scores = {m: Scores() for m in methods}
    thresholded = {m: Scores() for m in methods}
    whole, centre = Scores(), Scores()
    mean_side = float(np.mean(np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))) / size
    cbox = centred_box(h, w, mean_side)
    for k in range(args.n):
        tb = tuple(int(v) for v in boxes[k])
        whole.add(None, (0, 0, w, h), np.ones((h, w), bool), tb, masks[k])
        centre.add((h // 2, w // 2), cbox, box_mask(cbox, h, w), tb, masks[k])
    with tqdm(total=args.n * len(methods), desc="maps + GraphCut", unit="image") as bar:
        for m in methods:
            for k in range(args.n):
                tb, truth = tuple(int(v) for v in boxes[k]), [(int(labels[k]), tuple(int(v) for v in boxes[k]))]
                record = evaluate_image(model, images[k], truth, method=m, crops=1, classes="truth",
                                        truth_mask=masks[k], localiser=("graphcut", "threshold"),
                                        smooth_n=args.smooth_n, seed=args.seed + k, keep_masks=True)
                for localiser, table_row in (("graphcut", scores[m]), ("threshold", thresholded[m])):
                    table_row.add_guess(record["by_localiser"][localiser][0], tb, masks[k])
                bar.update(1)
    rows = [scores[m].row(m) for m in methods]
    rows += [whole.row("baseline-whole-image"), centre.row("baseline-centred-box")]
    rows += [thresholded[m].row(f"baseline-threshold-{m}") for m in methods]
    print(table(rows))
    if args.csv:
        write_csv(args.csv, rows)
        print(f"wrote {args.csv}")
    print(f"({args.n} images of {size}x{size}, seed {args.seed}; maps of the true class; centred box: "
          f"square, side {mean_side:.0%} of the image (the mean object size); {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    run(main)
