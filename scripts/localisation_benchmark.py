#!/usr/bin/env python
"""The paper's localisation claim, measured against ground truth on held-out shapes images.

    python scripts/localisation_benchmark.py                     # N = 500
    python scripts/localisation_benchmark.py --n 100 --seed 7 --csv out/localisation.csv

It runs the generic pipeline of ``evaluate_localisation.py`` (``saliency.evaluation.evaluate_image``,
centre crop) on generated images, but with the map of the true class (the weak label the paper
assumes) rather than the top-5 guesses, and adds what only a generated set can measure. For every
map method (gradient, deconvnet, guided backprop, SmoothGrad, Grad-CAM, guided Grad-CAM):
  pointing_mask       the map's maximum falls on the object's mask (strict, and with TorchRay's
                      tolerance: closer than 15 px at 224, 4.3 px at 64)
  pointing_box        ... inside the object's box (the only region ILSVRC-format data has)
  localisation error  the box has IoU < 0.5 with the true box (the paper's criterion, with the true
                      class instead of the top-5 guesses), for two boxes of the same map: GMM +
                      GraphCut + largest component (the paper), and the threshold box (the largest
                      component above the map's 95% quantile, no colour)
  MaxBoxAccV2         Choe et al. 2020: box accuracy of the thresholded map (every component's box)
                      at IoU 0.3, 0.5 and 0.7, averaged, each at the map threshold that does best on a
                      separate held-out set (--heldout-n images of --heldout-seed), never these images
  mask IoU            of each box's component with the true mask (the pixels the box came from)
and baselines: the whole image and a centred box (one box each: the same in both error columns).
Prints the model's accuracy on the same images, a table, the chosen map thresholds, and writes the CSV.
"""
import csv
import io
import time
from pathlib import Path

import numpy as np

from _common import (ArgumentParser, add_device_arg, add_weights_arg, check_device, finite_float, load_model,
                     non_negative_float, non_negative_int, positive_int, run)
from _images import atomic_write
from make_shapes_dataset import BENCHMARK_SEED
from saliency.localise import GAMMA, HARD, SOFT, check_quantiles
from saliency.maps import METHODS


def parse_args(argv=None):
    p = ArgumentParser(description="Measure weakly supervised localisation from saliency maps against "
                                   "the ground truth of generated shapes images.")
    add_weights_arg(p)
    p.add_argument("--n", type=positive_int, default=500, help="number of images (default 500)")
    p.add_argument("--seed", type=non_negative_int, default=BENCHMARK_SEED,
                   help=f"image seed (default {BENCHMARK_SEED})")
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default all)")
    p.add_argument("--smooth-n", type=positive_int, default=25, help="SmoothGrad samples per image (default 25)")
    p.add_argument("--batch", type=positive_int, default=50, help="images per classification pass (default 50)")
    p.add_argument("--soft", type=finite_float, nargs=2, default=SOFT, metavar=("FG", "BG"),
                   help="GraphCut: quantiles of the map the colour models are fit on (default 0.95 0.30)")
    p.add_argument("--hard", type=finite_float, nargs=2, default=HARD, metavar=("FG", "BG"),
                   help="GraphCut: quantiles of the map the cut holds to their side (default 0.995 0.005; "
                        "--hard 0.95 0.30 --gamma 50 clamps every soft label, GrabCut's way)")
    p.add_argument("--gamma", type=non_negative_float, default=GAMMA,
                   help="GraphCut: weight of the pairwise term (default 150, the authors')")
    p.add_argument("--heldout-n", type=positive_int, default=200,
                   help="held-out images MaxBoxAccV2's map thresholds are chosen on (default 200)")
    p.add_argument("--heldout-seed", type=non_negative_int, default=None,
                   help="their seed, not --seed (default --seed + 1)")
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
    """Per-image values of the measures for one row of the table: ``add`` once per image, with the
    row's point, its box and mask per localiser (``{"graphcut": (box, mask), "threshold": ...}``)."""

    KEYS = ("pointing_mask", "pointing_mask_tolerant", "pointing_box", "pointing_box_tolerant",
            "localisation_error", "localisation_error_threshold", "mask_iou", "mask_iou_threshold")

    def __init__(self):
        self.values = {k: [] for k in self.KEYS}
        self.curves = []                                     # MaxBoxAccV2: best IoU per map threshold

    def add(self, point, boxes, true_box, true_mask):
        from saliency.evaluation import is_correct, pointing_box, pointing_mask, pointing_tolerance
        from saliency.localise import mask_iou
        v, tol, shape = self.values, pointing_tolerance(*true_mask.shape), true_mask.shape
        v["pointing_mask"].append(np.nan if point is None else float(pointing_mask(point, true_mask)))
        v["pointing_mask_tolerant"].append(np.nan if point is None else float(pointing_mask(point, true_mask, tol)))
        v["pointing_box"].append(np.nan if point is None else float(pointing_box(point, 0, [(0, true_box)], shape)))
        v["pointing_box_tolerant"].append(np.nan if point is None else
                                          float(pointing_box(point, 0, [(0, true_box)], shape, tol)))
        for name, suffix in (("graphcut", ""), ("threshold", "_threshold")):
            box, mask = boxes[name]
            v["localisation_error" + suffix].append(float(not is_correct(0, box, [(0, true_box)])))
            v["mask_iou" + suffix].append(float(mask_iou(mask, true_mask)))

    def add_record(self, record, true_box, true_mask):
        """One image's ``evaluate_image`` record (one guess, the true class, masks kept)."""
        guesses = {name: g[0] for name, g in record["by_localiser"].items()}
        self.add(guesses["graphcut"]["point"], {n: (g["box"], g["mask"]) for n, g in guesses.items()},
                 true_box, true_mask)
        self.curves.append(record["iou_curve"])

    def row(self, name, heldout=None):
        """The table's row; MaxBoxAccV2 with its map thresholds chosen on ``heldout`` curves."""
        from saliency.box_accuracy import max_box_acc_v2

        def mean(v):
            v = np.asarray(v, float)
            return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        out = {"method": name, **{k: mean(v) for k, v in self.values.items()}, "maxboxacc_v2": float("nan"),
               **{f"map_threshold_iou{d}": float("nan") for d in (30, 50, 70)}, "n": len(self.values["mask_iou"])}
        if self.curves:
            acc = max_box_acc_v2(self.curves, heldout)
            out["maxboxacc_v2"] = acc["value"]
            out.update({f"map_threshold_iou{round(d * 100)}": t for d, t in acc["thresholds"].items()})
        return out


COLUMNS = ("method", *Scores.KEYS[:6], "maxboxacc_v2", *Scores.KEYS[6:], "map_threshold_iou30",
           "map_threshold_iou50", "map_threshold_iou70", "n")


def write_csv(path, rows):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


HEADS = (("pointing_mask", "pointing mask"), ("pointing_mask_tolerant", "mask, tol."),
         ("pointing_box", "pointing box"), ("pointing_box_tolerant", "box, tol."),
         ("localisation_error", "error GraphCut"), ("localisation_error_threshold", "error threshold"),
         ("maxboxacc_v2", "MaxBoxAccV2"), ("mask_iou", "mask IoU GraphCut"),
         ("mask_iou_threshold", "mask IoU threshold"))


def table(rows):
    w = max(len(r["method"]) for r in rows)
    lines = [f"| {'method':<{w}} | " + " | ".join(h for _, h in HEADS) + " |",
             f"|{'-' * (w + 2)}|" + "|".join("-" * (len(h) + 2) for _, h in HEADS) + "|"]
    for r in rows:
        cells = ("—" if np.isnan(r[k]) else f"{r[k]:.3f}" for k, _ in HEADS)
        lines.append(f"| {r['method']:<{w}} | " + " | ".join(f"{c:>{len(h)}}" for c, (_, h) in zip(cells, HEADS))
                     + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods: unknown {unknown or 'empty'}; choose from {', '.join(METHODS)}")
    check_quantiles(args.soft, args.hard)                      # --soft FG BG, --hard FG BG
    heldout_seed = args.seed + 1 if args.heldout_seed is None else args.heldout_seed
    if heldout_seed == args.seed:
        raise ValueError("--heldout-seed must differ from --seed: map thresholds are never chosen on the test images")
    check_device(args.device)
    from tqdm import tqdm

    from models import network, preprocess, shapes
    from saliency.evaluation import evaluate_image

    t0 = time.perf_counter()
    model = load_model(args.weights, args.device)
    if list(model.classes) != list(shapes.CLASSES):
        raise ValueError(f"{args.weights}: the benchmark needs a shapes network (classes {shapes.CLASSES})")
    size = model.config.input_size[0]
    images, labels, masks, boxes = shapes.make_dataset(args.n, seed=args.seed, size=size)
    x = np.stack([preprocess.normalise(im, model.meta) for im in images])
    pred = network.top1(model, x, chunk=args.batch)
    accuracy = float((pred == labels).mean())
    print(f"top-1 accuracy on these {args.n} test images (held out from training): {accuracy:.4f}")

    h, w = size, size
    scores = {m: Scores() for m in methods}
    whole, centre = Scores(), Scores()
    mean_side = float(np.mean(np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))) / size
    cbox = centred_box(h, w, mean_side)
    for k in range(args.n):
        tb = tuple(int(v) for v in boxes[k])
        for row, box in ((whole, (0, 0, w, h)), (centre, cbox)):
            point = None if row is whole else (h // 2, w // 2)
            row.add(point, dict.fromkeys(("graphcut", "threshold"), (box, box_mask(box, h, w))), tb, masks[k])
    held = shapes.make_dataset(args.heldout_n, seed=heldout_seed, size=size)
    curves = {m: [] for m in methods}                        # held-out: the maps' IoU curves only
    with tqdm(total=(args.n + args.heldout_n) * len(methods), desc="maps + GraphCut", unit="image") as bar:
        for m in methods:
            for k in range(args.heldout_n):
                truth = [(int(held[1][k]), tuple(int(v) for v in held[3][k]))]
                curves[m].append(evaluate_image(model, held[0][k], truth, method=m, crops=1, classes="truth",
                                                localiser=(), smooth_n=args.smooth_n,
                                                seed=heldout_seed + k)["iou_curve"])
                bar.update(1)
            for k in range(args.n):
                tb, truth = tuple(int(v) for v in boxes[k]), [(int(labels[k]), tuple(int(v) for v in boxes[k]))]
                record = evaluate_image(model, images[k], truth, method=m, crops=1, classes="truth",
                                        truth_mask=masks[k], localiser=("graphcut", "threshold"),
                                        smooth_n=args.smooth_n, seed=args.seed + k, keep_masks=True,
                                        graphcut=dict(soft=args.soft, hard=args.hard, gamma=args.gamma))
                scores[m].add_record(record, tb, masks[k])
                bar.update(1)
    rows = [scores[m].row(m, curves[m]) for m in methods]
    rows += [whole.row("baseline-whole-image"), centre.row("baseline-centred-box")]
    print(table(rows))
    print(f"MaxBoxAccV2: the map thresholds (fractions of each map's range) chosen on {args.heldout_n} held-out "
          f"images (seed {heldout_seed}), never these test images, at IoU 0.3 / 0.5 / 0.7:")
    for r in rows[:len(methods)]:
        print(f"  {r['method']}: " + " / ".join(f"{r[f'map_threshold_iou{d}']:.3f}" for d in (30, 50, 70)))
    if args.csv:
        write_csv(args.csv, rows)
        print(f"wrote {args.csv}")
    print(f"({args.n} images of {size}x{size}, seed {args.seed}; maps of the true class; centred box: "
          f"square, side {mean_side:.0%} of the image (the mean object size); {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    run(main)
