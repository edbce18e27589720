"""How fast the amplitude spectrum of the shapes data falls: the p of amplitude ~ 1/f^p (dev tool)

    python experiments/shapes_spectrum.py [--n 500]

The slope of log mean |FFT| against log radial frequency over 2/64..1/2 (12 log-spaced bins), for
the bare silhouettes (white on black), their masks and the cluttered training images, in grey,
per class. The class models' Fourier prior (saliency/transforms.py, ``decay_power``) is matched to it.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import shapes  # noqa: E402


def slope(images):
    """p of amplitude ~ 1/f^p for (N, H, W) images, each with its mean removed."""
    x = images.astype(np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    amplitude = np.abs(np.fft.rfft2(x)).mean(axis=0)
    H, W = x.shape[1:]
    f = np.sqrt(np.fft.fftfreq(H)[:, None] ** 2 + np.fft.rfftfreq(W)[None, :] ** 2)
    edges = np.geomspace(2 / max(H, W), 0.5, 13)
    k = np.digitize(f, edges)
    fb = np.array([f[k == i].mean() for i in range(1, 13)])
    ab = np.array([amplitude[k == i].mean() for i in range(1, 13)])
    return -np.polyfit(np.log(fb), np.log(ab), 1)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=12345)
    args = p.parse_args()
    bare, labels, masks, _ = shapes.make_dataset(args.n, args.seed, clutter=False)
    clutter, labels2, _, _ = shapes.make_dataset(args.n, args.seed, clutter=True)
    bare, clutter = bare.mean(axis=3), clutter.astype(np.float64).mean(axis=3)
    print(f"amplitude ~ 1/f^p over {args.n} images: silhouettes {slope(bare):.2f}, masks {slope(masks):.2f}, "
          f"cluttered images {slope(clutter):.2f}")
    for c, name in enumerate(shapes.CLASSES):
        print(f"  {name:10s} silhouettes {slope(bare[labels == c]):.2f}  cluttered {slope(clutter[labels2 == c]):.2f}")


if __name__ == "__main__":
    main()
