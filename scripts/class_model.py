#!/usr/bin/env python
"""Class model visualisation (paper Sec. 2): the image that maximises a class score.

    python scripts/class_model.py --target star                  # one class
    python scripts/class_model.py --target all --paper           # every class, the paper's plain recipe
    python scripts/class_model.py --target 130 --weights weights/vgg16.h5 --steps 500 --gif

Gradient ascent on S_c(I) - lambda ||I||^2 from the zero image, weights fixed. Without --paper the
usual regularisers for nicer pictures are on (jitter, blur, clipping to the pixel range); every
one of them can be set by hand. Writes class_model_C_NAME.png (and .gif with --gif), a score curve,
and, for several classes, class_models.png with them all.
"""
import argparse

import numpy as np

from _common import check_device, finite_float, run
from _images import add_common_args, atomic_write, class_label, load_classifier, output_dir, save_npy


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Visualise what a network has learnt of a class: gradient ascent "
                                            "on the image to maximise the class score minus lambda ||I||^2.")
    add_common_args(p, image=False, target_help="class index or name, a comma-separated list, or 'all' "
                                                "(default: all)")
    p.add_argument("--steps", type=int, default=300, help="gradient ascent steps (default 300)")
    p.add_argument("--lr", type=finite_float, default=None, help="step size (default: 1.0 with --paper, else 0.5)")
    p.add_argument("--l2", type=finite_float, default=None, metavar="LAMBDA",
                   help="weight lambda of ||I||^2 (default 1e-3)")
    p.add_argument("--paper", action="store_true",
                   help="the paper's recipe only: no jitter, blur, clipping or total variation")
    p.add_argument("--jitter", type=int, default=None, help="random shift in pixels per step (default 2)")
    p.add_argument("--blur-every", type=int, default=None, metavar="K", help="Gaussian blur every K steps (default 4)")
    p.add_argument("--blur-sigma", type=finite_float, default=0.5, help="blur width in pixels (default 0.5)")
    p.add_argument("--no-clip", action="store_true", help="do not clip to the valid pixel range")
    p.add_argument("--tv", type=finite_float, default=0.0, help="total-variation weight (default 0)")
    p.add_argument("--snapshot-every", type=int, default=0, metavar="K",
                   help="keep the image every K steps (for --gif; default steps/20 with --gif)")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF of the ascent")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter (default 0)")
    return p.parse_args(argv)


def settings(args):
    """The regularisers in force: all off with --paper unless given explicitly."""
    paper = args.paper
    return dict(
        lr=args.lr if args.lr is not None else (1.0 if paper else 0.5),
        l2=args.l2 if args.l2 is not None else 1e-3,
        jitter=args.jitter if args.jitter is not None else (0 if paper else 2),
        blur_every=args.blur_every if args.blur_every is not None else (0 if paper else 4),
        blur_sigma=args.blur_sigma, clip=not (paper or args.no_clip), tv=args.tv)


def score_curve(scores, width=256, height=96):
    """A small line plot of the class score per step, as an RGB image."""
    from PIL import Image, ImageDraw
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    s = np.asarray(scores, np.float64)
    lo, hi = float(s.min()), float(s.max())
    span = hi - lo or 1.0
    pts = [(4 + i * (width - 8) / max(len(s) - 1, 1), height - 14 - (v - lo) / span * (height - 28))
           for i, v in enumerate(s)]
    d.line(pts, fill=(31, 119, 180), width=2)
    d.text((4, 2), f"score {hi:.2f}", fill="black")
    d.text((4, height - 12), f"{lo:.2f}   steps 0..{len(s) - 1}", fill="black")
    return np.asarray(im)


def save_gif(path, frames, duration=80):
    """Animated GIF, written atomically."""
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                duration=duration, loop=0))


def main(argv=None):
    args = parse_args(argv)
    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    for flag in ("jitter", "blur_every", "snapshot_every"):
        if (getattr(args, flag) or 0) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.blur_sigma <= 0 or args.tv < 0 or (args.l2 is not None and args.l2 < 0):
        raise ValueError("--blur-sigma must be > 0, and --tv and --l2 >= 0")
    check_device(args.device)
    from tqdm import tqdm

    import saliency
    from models import imagenet, preprocess
    from saliency import render

    model = load_classifier(args.weights, args.device)
    if args.target in (None, "all"):
        targets = list(range(len(model.classes)))
    else:
        targets = [imagenet.lookup(t.strip(), model.classes) for t in args.target.split(",")]
    cfg = settings(args)
    out = output_dir(args.out)
    snap = args.snapshot_every or (max(1, args.steps // 20) if args.gif else 0)
    pictures, titles = [], []
    for t in targets:
        with tqdm(total=args.steps, desc=f"class {class_label(model, t)}", unit="step") as bar:
            image, history = saliency.class_model(model, t, steps=args.steps, snapshot_every=snap,
                                                  progress=bar, return_history=True, seed=args.seed, **cfg)
        picture = preprocess.to_display(image, model.meta, stretch=True)
        stem = f"class_model_{t}_{imagenet.display_name(model.classes[t]).replace(' ', '_').replace('/', '_')}"
        render.save_png(out / f"{stem}.png", render.upscale(picture, 256))
        render.save_png(out / f"{stem}_score.png", score_curve(history["scores"]))
        if args.gif and history["snapshots"]:
            frames = [render.upscale(preprocess.to_display(im, model.meta, stretch=True), 256)
                      for _, im in history["snapshots"]]
            save_gif(out / f"{stem}.gif", frames)
        if args.save_npy:
            save_npy(out / f"{stem}.npy", image)
        pictures.append(picture)
        titles.append(class_label(model, t))
        tqdm.write(f"class {class_label(model, t)}: score {history['scores'][0]:.3f} -> "
                   f"{history['scores'][-1]:.3f}; {out / (stem + '.png')}")
    if len(targets) > 1:
        mode = "paper" if args.paper else "regularised"
        caption = (f"class models ({mode}: lr {cfg['lr']}, lambda {cfg['l2']}, jitter {cfg['jitter']}, "
                   f"blur every {cfg['blur_every']}, clip {cfg['clip']}, tv {cfg['tv']}; {args.steps} steps); "
                   "each image stretched to the full range")
        render.save_png(out / "class_models.png", render.grid(pictures, titles, ncols=5, caption=caption))
        print(f"all classes: {out / 'class_models.png'}")
    return 0


if __name__ == "__main__":
    run(main)
