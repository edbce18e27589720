#!/usr/bin/env python
"""The whole paper on the shipped shapes network, offline, in a few minutes on a CPU.

    python scripts/demo.py                 # writes out/
    python scripts/demo.py --fast          # a quick smoke run (fewer images and steps)

Generates held-out test images (one per class), and writes:
  out/images/            the test images
  out/saliency/          per image: gradient, deconvnet and guided maps, and the localisation
  out/class_models.png   the class model of every class (paper Sec. 2)
  out/summary.png        all of it on one page
"""
import argparse
import time

import numpy as np

from _common import add_device_arg, add_weights_arg, check_device, load_model, run
from _images import class_label, output_dir, save_npy

RULES = ("gradient", "deconvnet", "guided")
DEMO_SEED = 2013                       # the paper's year; any seed the training did not use


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run every method of the paper on the shipped demo network and "
                                            "write the pictures to --out.")
    add_weights_arg(p)
    add_device_arg(p)
    p.add_argument("--out", default="out", metavar="DIR", help="output folder (default out/)")
    p.add_argument("--fast", action="store_true", help="3 images and 20 class-model steps (a smoke test)")
    p.add_argument("--steps", type=int, default=200, help="class-model steps per class (default 200; the "
                                                        "library's default is 512)")
    p.add_argument("--save-npy", action="store_true", help="also write the raw maps as .npy")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)
    t0 = time.perf_counter()
    from tqdm import tqdm

    import minigrad as mg
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
    rows, row_titles = [], []
    with tqdm(total=len(picks), desc="maps and localisation", unit="image") as bar:
        for k in picks:
            rgb, label = images[k], int(labels[k])
            name = f"{k:02d}_{shapes.CLASSES[label]}"
            render.save_png(out / "images" / f"{name}.png", rgb)
            x = preprocess.normalise(rgb, model.meta)[None]
            maps = {r: mg.backend.to_numpy(saliency.saliency_map(saliency.input_gradient(model, x, label, rule=r)))[0]
                    for r in RULES}
            mask, box = saliency.localise(rgb, maps["gradient"])
            seg = render.draw_box(render.mask_outline(rgb, mask), box, (255, 0, 0), 1)
            seg = render.draw_box(seg, tuple(int(v) for v in boxes[k]), (0, 255, 0), 1)
            heat = [render.heatmap(maps[r], 99) for r in RULES]
            render.save_png(out / "saliency" / f"{name}.png",
                            render.grid([rgb] + heat + [seg], ["image"] + list(RULES) + ["localisation"],
                                        caption=f"class {class_label(model, label)}; maps clipped at the 99th "
                                                "percentile; box red = GraphCut, green = truth"))
            if args.save_npy:
                for r in RULES:
                    save_npy(out / "saliency" / f"{name}_{r}.npy", maps[r])
            rows.append([rgb] + heat + [seg])
            row_titles.append(shapes.CLASSES[label])
            bar.update(1)

    class_images = []
    for c in tqdm(range(len(model.classes)), desc="class models", unit="class"):
        image = saliency.class_model(model, c, steps=steps)              # the library's default recipe
        class_images.append(preprocess.to_display(image, model.meta))     # in the pixel range: shown as is
    render.save_png(out / "class_models.png",
                    render.grid(class_images, [class_label(model, c) for c in range(len(model.classes))], ncols=5,
                                caption=f"class models: {steps} steps of Adam 0.05 on S_c with lucid's random "
                                        "transforms on a decorrelated Fourier image; pixels shown as is"))

    cells, titles = [], []
    for row, title in zip(rows, row_titles):
        cells += row
        titles += [title] + list(RULES) + ["GraphCut box"]
    summary = render.grid(cells, titles, ncols=5, min_size=96,
                          caption="deepinside demo: saliency maps (gradient, deconvnet, guided backprop; 99th "
                                  "percentile) and GMM + GraphCut localisation (red; truth green) on held-out "
                                  "images")
    render.save_png(out / "saliency_summary.png", summary)
    class_grid = render.grid(class_images, list(model.classes), ncols=10, min_size=96)
    pad = np.full((8, summary.shape[1], 3), 255, np.uint8)
    width = summary.shape[1]
    if class_grid.shape[1] < width:
        class_grid = np.pad(class_grid, ((0, 0), (0, width - class_grid.shape[1]), (0, 0)), constant_values=255)
    else:
        from PIL import Image
        h = int(class_grid.shape[0] * width / class_grid.shape[1])
        class_grid = np.asarray(Image.fromarray(class_grid).resize((width, h), Image.LANCZOS))
    render.save_png(out / "summary.png", np.concatenate([summary, pad, class_grid], axis=0))
    print(f"done in {time.perf_counter() - t0:.0f} s. Pictures in {out}/:")
    print(f"  {out / 'summary.png'}           everything on one page")
    print(f"  {out / 'saliency'}/               maps and localisation per image")
    print(f"  {out / 'class_models.png'}      the class model of every class")
    print(f"  {out / 'images'}/                 the test images")
    return 0


if __name__ == "__main__":
    run(main)
