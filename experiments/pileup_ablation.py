"""Which ingredient of the default class-model recipe removes the left-border pile-up? (dev tool)

    python experiments/pileup_ablation.py [--weights FILE.h5] [STEPS [CLASS ...]]

First, for every class, the share of the gradient's L1 mass at the zero image (the mean grey) that
lies in the left and in the right 8 of 64 columns (12.5% each would be uniform). Then, for circle,
ring and cross (the classes whose plain-recipe models pile up at the left border and stall), it runs
variants of the recipe and prints the network's verdict on the picture, the score before and after,
and the fraction of the image's L1 deviation from the mean that lies in the left 8 columns (12.5%
would be uniform).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import saliency  # noqa: E402
from models import network, preprocess, vgg  # noqa: E402
from saliency.class_model import PRESETS, _score_gradient  # noqa: E402
from saliency.gradients import frozen  # noqa: E402


def roll_jitter(model, c, steps, lr=1.0, l2=1e-3, jitter=8, seed=0):
    """The paper's ascent with np.roll jitter (wrap-around; the library's jitter fills with the mean instead)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((3, 64, 64), np.float32)
    scores = []
    with frozen(model):
        for _ in range(steps):
            dy, dx = rng.integers(-jitter, jitter + 1, 2)
            s, g = _score_gradient(model, np.roll(image, (dy, dx), axis=(1, 2)), c)
            scores.append(s)
            image = image + np.float32(lr) * (np.roll(g, (-dy, -dx), axis=(1, 2)) - np.float32(2 * l2) * image)
        return image, scores[0], _score_gradient(model, image, c)[0]


def border_shares(model):
    """(left, right) share of |dS_c/dI| at the zero image in the 8 outer columns, for each class."""
    zero = np.zeros((3,) + tuple(model.config.input_size), np.float32)
    with frozen(model):
        for c, name in enumerate(model.classes):
            e = np.abs(_score_gradient(model, zero, c)[1]).sum(0)
            print(f"{name:8s} gradient at the zero image: left-8-columns share {e[:, :8].sum() / e.sum():.2f}, "
                  f"right {e[:, -8:].sum() / e.sum():.2f}", flush=True)


def main(steps, classes=(0, 1, 5), weights=ROOT / "weights" / "shapes_vgg.h5"):
    model = vgg.load(weights)
    border_shares(model)
    lucid = PRESETS["lucid"]
    variants = {
        "paper (no jitter)": dict(PRESETS["paper"]),
        "paper + pad-and-crop jitter 8,4": dict(PRESETS["paper"], jitter=(8, 4)),
        "paper + lucid transforms": dict(PRESETS["paper"], jitter=lucid["jitter"], scales=lucid["scales"],
                                         degrees=lucid["degrees"]),
        "Fourier + Adam, no transforms": dict(lucid, jitter=(), scales=(1.0,), degrees=0.0),
        "pixels + Adam + lucid transforms": dict(lucid, param="pixel", clip=True),
        "lucid": dict(lucid),
    }
    for c in classes:
        rows = [("paper + np.roll jitter 8 (wrap-around)",) + roll_jitter(model, c, steps)]
        for name, kw in variants.items():
            img, h = saliency.class_model(model, c, return_history=True, **dict(kw, steps=steps))
            rows.append((name, img, h["scores"][0], h["final_score"]))
        for name, img, s0, s1 in rows:
            stretch = not (np.abs(img) <= 2.0001).all()
            pic = preprocess.to_display(img, model.meta, stretch=stretch)
            said = int(network.top1(model, preprocess.normalise(pic, model.meta)[None])[0])
            e = np.abs(img).sum(0)
            print(f"{model.classes[c]:8s} {name:40s} picture -> {model.classes[said]:9s} score {s0:7.2f} -> "
                  f"{s1:8.2f}  left-8-columns share {e[:, :8].sum() / e.sum():.2f}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("steps", type=int, nargs="?", default=150, help="steps of each variant (default 150)")
    p.add_argument("classes", type=int, nargs="*", default=[0, 1, 5], help="classes (default 0 1 5)")
    p.add_argument("--weights", default=ROOT / "weights" / "shapes_vgg.h5", help="default: the shipped network")
    args = p.parse_args()
    if not Path(args.weights).is_file():
        p.error(f"--weights {args.weights}: no such file")
    main(args.steps, args.classes, args.weights)
