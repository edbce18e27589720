"""How robust a shapes network is: its accuracy under an L2 PGD attack (dev tool)

    python experiments/robust_accuracy.py WEIGHTS.h5 [WEIGHTS.h5 ...] [--n 200] [--eps 0 1 2] [--steps 7]

For each weight file, the top-1 accuracy on N held-out shapes images (seed 4242) as they are and
under the PGD that scripts/train_shapes.py trains with (saliency/adversarial.py: a random start, STEPS
steps of 2.5 eps / STEPS, L2 ball of radius eps in the model's input space, pixels kept in 0..1), the
attack seeded the same for every file. docs/class_models.md's robust fine-tunes are scored with it.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from models import network, preprocess, shapes  # noqa: E402
from saliency.adversarial import pgd  # noqa: E402
from saliency.transforms import valid_range  # noqa: E402


def robust_accuracy(model, x, y, eps, steps, seed=0):
    """Share of x (N, 3, H, W) classified as y under an L2 PGD attack of radius eps (eps 0: the
    clean images)."""
    if eps:
        lo, hi = valid_range(model.meta)
        x = pgd(model, x, y, eps, steps, "l2", lo, hi, np.random.default_rng(seed))
    return float((network.top1(model, x) == y).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="shapes networks (the project's HDF5 weight files)")
    p.add_argument("--n", type=int, default=200, help="held-out images (default 200)")
    p.add_argument("--eps", type=float, nargs="+", default=[0.0, 1.0, 2.0], help="radii (default 0 1 2)")
    p.add_argument("--steps", type=int, default=7, help="PGD steps (default 7)")
    args = p.parse_args(argv)
    images, y, _, _ = shapes.make_dataset(args.n, seed=4242, size=64)
    for path in args.weights:
        model = models.load(path)
        x = np.stack([preprocess.normalise(im, model.meta) for im in images])
        scores = [f"eps {eps:g}: {robust_accuracy(model, x, y, eps, args.steps):.3f}" for eps in args.eps]
        print(path, *scores, sep="  ", flush=True)


if __name__ == "__main__":
    main()
