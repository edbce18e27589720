#!/usr/bin/env python
"""The whole paper on the shipped shapes network, offline, in a few minutes on a CPU.

    python scripts/demo.py                 # writes out/
    python scripts/demo.py --fast          # a quick smoke run (fewer images and steps)

Generates held-out test images (one per class), and writes:
  out/images/               the test images
  out/saliency/             per image: gradient, deconvnet and guided maps, and the localisation
  out/class_models.png      the class model of every class (paper Sec. 2), titled with its score
  out/saliency_summary.png  the maps and localisations of every image on one page
  out/summary.png           all of it on one page, with a legend and a caption saying how maps are scaled
and, at the end, lists what it wrote.
"""
import argparse
import time

import numpy as np

from _common import add_device_arg, add_weights_arg, check_device, load_model, output_folder, run
from _images import class_label, output_dir, save_npy

DEMO_SEED = 2013                       # the paper's year; any seed the training did not use
CLIP = 99                              # heat maps: each map's 99th percentile and above is the top colour
LOCALISE = dict(fg_quantile=0.95, bg_quantile=0.30)
LEGEND = ("outline", "found", "truth")


def map_caption():
    """What the saliency panels show and how they were scaled, in words."""
    from saliency import render
    return ("Saliency maps (Sec. 3): max over colour channels of |dS_c/dI| for the true class c, one backward pass "
            "under each ReLU rule; " + render.scaling_caption(CLIP) + ". Localisation (Sec. 3.2): colour GMMs on "
            f"the gradient map's top {1 - LOCALISE['fg_quantile']:.0%} and bottom {LOCALISE['bg_quantile']:.0%} "
            "pixels, GraphCut, its largest connected component and that component's box.")


def class_score(model, image, c):
    """(S_c, softmax p_c) of the (3, H, W) model-space image for class c."""
    import minigrad as mg
    with mg.no_grad():
        logits = mg.backend.to_numpy(model(mg.Tensor(mg.to_device(image[None], model.device))).data)[0]
    p = np.exp(logits - logits.max())
    return float(logits[c]), float(p[c] / p.sum())


def summary_page(rows, class_images, class_titles, heat_label, caption):
    """One page: a row of panels per image, then the class models, a legend, a colour bar, a caption."""
    from saliency import render
    cell, width = 1.4, 5 * 1.5
    strip_rows = -(-len(class_images) // 5)
    fig = render.new_figure(width, len(rows) * (cell + 0.4) + strip_rows * (cell + 0.5) + 3.2)
    top, bottom = fig.subfigures(2, 1, height_ratios=[len(rows) * (cell + 0.4), strip_rows * (cell + 0.5) + 0.3])
    render.draw_panels(top, [p for row in rows for p in row], 5, cell)
    bottom.suptitle("class models", fontsize=render.FONT_SIZE + 1)
    render.draw_panels(bottom, [render.Panel(im, t) for im, t in zip(class_images, class_titles)], 5, cell)
    return render.to_array(render.finish(fig, caption, LEGEND, heat_label, bar_under=top))


#: what the demo's outputs are, for the listing at the end (a file not named here is listed bare)
CONTENTS = {"summary.png": "everything on one page", "saliency_summary.png": "the maps and localisations",
            "class_models.png": "the class model of every class", "images": "the test images",
            "saliency": "maps and localisation per image"}


def listing(out, since):
    """One aligned line per file or folder under ``out`` that this run wrote (modified since the
    time ``since``, less a second for coarse file-system clocks), with what it holds."""
    def fresh(path):
        return path.is_file() and path.stat().st_mtime >= since - 1
    rows = []
    for path in sorted(out.iterdir(), key=lambda p: (p.is_dir(), p.name)):
        if path.is_dir():
            n = sum(map(fresh, path.rglob("*")))
            if n:
                rows.append((f"{path}/", f"{CONTENTS.get(path.name, '')} ({n} file{'s' * (n != 1)})".strip()))
        elif fresh(path):
            rows.append((str(path), CONTENTS.get(path.name, "")))
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name:<{width}}  {what}".rstrip() for name, what in rows]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run every method of the paper on the shipped demo network and "
                                            "write the pictures to --out.")
    add_weights_arg(p)
    add_device_arg(p)
    p.add_argument("--out", default="out", type=output_folder, metavar="DIR", help="output folder (default out/)")
    p.add_argument("--fast", action="store_true", help="3 images and 20 class-model steps (a smoke test)")
    p.add_argument("--steps", type=int, default=200, help="class-model steps per class (default 200; the "
                                                        "library's default is 512)")
    p.add_argument("--save-npy", action="store_true", help="also write the raw maps as .npy")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)
    t0, started = time.perf_counter(), time.time()
    from tqdm import tqdm

    import minigrad as mg
    from minigrad import relu_rules
    import saliency
    from models import preprocess, shapes
    from saliency import render

    model = load_model(args.weights, args.device)
    if model.classes != list(shapes.CLASSES):
        raise ValueError(f"{args.weights}: the demo needs the shapes network (its classes are {shapes.CLASSES})")
    size = model.config.input_size[0]
    out = output_dir(args.out)
    for sub in ("images", "saliency"):
        (out / sub).mkdir(exist_ok=True)

    # Held-out images: the first of each class from a seed the training never used.
    images, labels, masks, boxes = shapes.make_dataset(60, seed=DEMO_SEED, size=size)
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(len(shapes.CLASSES))]
    picks = picks[:3] if args.fast else picks
    steps = 20 if args.fast else args.steps
    rows, ious = [], []
    heat_label = f"saliency map value: 0 = the map's minimum, 1 = its {CLIP:g}th percentile and above"
    with tqdm(total=len(picks), desc="maps and localisation", unit="image") as bar:
        for k in picks:
            rgb, label = images[k], int(labels[k])
            name = f"{k:02d}_{shapes.CLASSES[label]}"
            render.save_png(out / "images" / f"{name}.png", rgb)
            x = preprocess.normalise(rgb, model.meta)[None]
            maps = {r: mg.backend.to_numpy(saliency.saliency_map(saliency.input_gradient(model, x, label, rule=r)))[0]
                    for r in relu_rules.RULES}
            mask, box = saliency.localise(rgb, maps["gradient"], **LOCALISE)
            panel, iou = render.localisation_panel(rgb, mask, box, tuple(int(v) for v in boxes[k]))
            row = [render.Panel(rgb, f"image: {shapes.CLASSES[label]}")]
            row += [render.Panel(render.heatmap(maps[r], CLIP), r) for r in relu_rules.RULES] + [panel]
            render.save_png(out / "saliency" / f"{name}.png",
                            render.grid(row, ncols=5, min_size=140, legend=LEGEND, colourbar=heat_label,
                                        caption=f"class {class_label(model, label)}. {map_caption()}"))
            if args.save_npy:
                for r in relu_rules.RULES:
                    save_npy(out / "saliency" / f"{name}_{r}.npy", maps[r])
            rows.append(row)
            ious.append(iou)
            tqdm.write(f"{name}: GraphCut box {tuple(int(v) for v in box)}, {panel.title.splitlines()[-1]}")
            bar.update(1)

    class_images, class_titles = [], []
    for c in tqdm(range(len(model.classes)), desc="class models", unit="class"):
        image = saliency.class_model(model, c, steps=steps)              # the library's default recipe
        class_images.append(preprocess.to_display(image, model.meta))     # in the pixel range: shown as is
        score, prob = class_score(model, image, c)
        class_titles.append(f"{model.classes[c]}\nS_c {score:.1f}, p {prob:.0%}")
    class_caption = (f"Class models (Sec. 2): {steps} steps of Adam 0.05 on S_c with lucid's random transforms "
                     "(pad, jitter, scale, rotation) on a decorrelated Fourier image, from the zero image; titled "
                     "with the class, its score S_c (the logit) and softmax probability p on the final image. Each "
                     "image is shown with the preprocessing mean added back, pixels as they are (no stretching).")
    render.save_png(out / "class_models.png", render.grid(class_images, class_titles, ncols=5, min_size=140, caption=class_caption))

    passed = sum(iou >= render.IOU_PASS for iou in ious)
    verdict = (f"{passed} of {len(ious)} GraphCut boxes pass: IoU with the truth box ≥ {render.IOU_PASS:g}, the "
               "paper's criterion (each box's IoU is written above it).")
    print(verdict)
    render.save_png(out / "saliency_summary.png",
                    render.grid([p for row in rows for p in row], ncols=5, min_size=140, legend=LEGEND,
                                colourbar=heat_label, caption=f"{map_caption()}\n{verdict}"))
    render.save_png(out / "summary.png", summary_page(rows, class_images, class_titles, heat_label,
                                                      f"{map_caption()}\n{verdict}\n{class_caption}"))
    print(f"done in {time.perf_counter() - t0:.0f} s. Pictures in {out}/:")
    for line in listing(out, started):
        print(line)
    return 0


if __name__ == "__main__":
    run(main)
