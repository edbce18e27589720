#!/usr/bin/env python
"""What repeats bit for bit: the measurements behind docs/reproducibility.md.

    python experiments/reproducibility.py                               # whatever BLAS kernel loads
    OPENBLAS_CORETYPE=Haswell python experiments/reproducibility.py     # OpenBLAS's Haswell kernel

Prints, for the BLAS kernel that runs (threadpoolctl):
1. whether a float32 and a float64 GEMM give identical columns of the result identical bits;
2. the shipped shapes VGG's float32 input gradient at the zero image (every max-pool window fed by
   constant activations ties) and at a held-out shapes image, against the same tier's float64 run,
   on both tiers;
3. the default class model (20 steps, seed 0) run twice, and on 1 and on 2 threads.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minigrad as mg  # noqa: E402
import models  # noqa: E402
import saliency  # noqa: E402
from models import preprocess, shapes  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "shapes_vgg.h5"


def blas_kernel():
    from threadpoolctl import threadpool_info
    return ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')}" for i in threadpool_info()
                     if i["user_api"] == "blas")


def gemm_ties():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(16, 72)).astype(dtype)
        b = np.full((72, 64), 0.7, dtype)                              # 64 identical columns
        distinct = max(len(np.unique(row)) for row in a @ b)
        print(f"  {np.dtype(dtype).name} GEMM (16, 72) @ (72, 64), identical columns: "
              f"{distinct} distinct value(s) per row")


def gradient_ties(model):
    target = 0
    images = shapes.make_dataset(1, seed=31337)[0]
    starts = {"zero image": np.zeros((1, 3) + tuple(model.config.input_size), np.float32),
              "a shapes image": preprocess.prepare_batch(images, model.meta)}
    for tier in ("simple", "fast"):
        for name, x in starts.items():
            with mg.use_ops(tier):
                g32 = saliency.input_gradient(model, x, target)
                for p in model.parameters():
                    p.data = p.data.astype(np.float64)
                g64 = saliency.input_gradient(model, x.astype(np.float64), target)
                for p in model.parameters():
                    p.data = p.data.astype(np.float32)
            err = np.abs(g32 - g64).max() / np.abs(g64).max()
            print(f"  {tier} tier, {name}: max |g32 - g64| / max |g64| = {err:.1e}")


def class_models(model):
    runs = {}
    for threads in (1, 2, 2):
        mg.set_threads(threads)
        runs.setdefault(threads, []).append(saliency.class_model(model, 0, steps=20, seed=0))
    print(f"  two runs on 2 threads identical: {np.array_equal(*runs[2])}")
    diff = np.abs(runs[1][0] - runs[2][0]).max() / np.abs(runs[2][0]).max()
    print(f"  1 thread against 2: max difference {diff:.1e} of max |I|")


def main():
    print(f"BLAS: {blas_kernel()}")
    print("1. GEMMs")
    gemm_ties()
    model = models.load(WEIGHTS)
    print("2. input gradients, float32 against the same tier's float64")
    gradient_ties(model)
    print("3. the default class model, class 0, 20 steps, seed 0")
    class_models(model)


if __name__ == "__main__":
    main()
