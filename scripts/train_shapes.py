#!/usr/bin/env python
"""Train the shipped demo networks, a small VGG and a small ResNet, on the synthetic shapes task, with
minigrad alone.

    python scripts/train_shapes.py                      # writes out/shapes_vgg.h5
    python scripts/train_shapes.py --arch resnet        # writes out/shapes_resnet.h5
    python scripts/train_shapes.py --epochs 2 --train-size 4000 --out quick.h5
    python scripts/train_shapes.py --resume out/shapes_vgg.h5 --seed 1 --lr 5e-4 --curriculum-steps 0

(weights/README.md gives the exact commands that made the shipped files.) A shipped file,
weights/shapes_vgg.h5 or weights/shapes_resnet.h5, is replaced only when --out names it; the script
then says so, at the start and at the end (`git checkout weights/...` brings the shipped one back).

The images come from models/shapes.py (seeded, so the same command makes the same data); each
batch is augmented by a random element of the square's symmetry group (rot90 and mirror), under
which every shape class is closed. Adam with He initialisation, the learning rate decayed by a
cosine over the run. At the end the model is scored on a held-out set generated from another seed.

A curriculum gets the net off its plateau: on cluttered images alone a plain VGG sits at chance
(loss ln 10) for hundreds of steps, so the first --curriculum-steps batches mix in bare silhouettes
(white shapes on black), a share that falls linearly from --curriculum-share to zero. (Measured with
PyTorch on this task, Adam 1e-3: without it, at batch 64, the loss was still 2.20 after 450 steps;
with it, at batch 32, held-out accuracy was 70% after 1125 steps.)

Adversarial training (Madry et al. 2018), for gradients that look like the object (Santurkar et al.
2019, Engstrom et al. 2019): with --adversarial-eps EPS each batch is replaced by its PGD attack,
--adversarial-steps K steps of size 2.5 * EPS / K from a random start in the ball of radius EPS
(--adversarial-norm l2: the L2 ball, steps along the normalised gradient; linf: the box, steps along
its sign; saliency/adversarial.py), each image kept inside the valid pixel range, as the robustness library does;
--adversarial-share F attacks only that share of each batch and keeps the rest clean. EPS is in the
model's input space (pixels in 0..1 minus 0.5, divided by 0.25: 4x the pixel-space distance). Each
attack step is a forward and backward pass without weight gradients: a training step of batch 32
took 0.25-0.29 s of CPU plain, 0.82-0.91 s with K = 3, 1.24 s with K = 5 (one thread).

The ResNet (--arch resnet) trains its batch norms in training mode (batch statistics, running
averages updated); the held-out score runs in eval mode, on the running averages the file keeps.
"""
import math
import os
import time

import numpy as np

from _common import (ArgumentParser, PROJECT_ROOT, add_device_arg, check_device, finite_float, non_negative_int,
                     output_file, run, warn)

#: the demo network: three blocks of two 3x3 convolutions, one hidden fully connected layer.
BLOCKS = [[16, 16], [32, 32], [64, 64]]
FC = [128]
#: preprocessing: RGB in [0, 1], centred and scaled to about unit variance.
META = {"channel_order": "RGB", "scale": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
#: the ResNet (--arch resnet): a 3x3 stride-2 stem (no max pool), three stages of two basic blocks at
#: 32x32, 16x16 and 8x8. A training step costs what the VGG's does; a stride-1 stem made it 3.4 times that.
RESNET = dict(block="basic", depths=[2, 2, 2], widths=[16, 32, 64], stem_width=16, stem_kernel=3,
              stem_stride=2, maxpool=False)
HELD_OUT_SEED_OFFSET = 1_000_000       # held-out images come from seed + this: never seen in training


def parse_args(argv=None):
    p = ArgumentParser(description="Train the small VGG (or ResNet) of the shapes demo with minigrad "
                                   "and save it in the project's HDF5 weight format.")
    p.add_argument("--arch", choices=("vgg", "resnet"), default="vgg",
                   help="the network: the small VGG (default) or the small ResNet with batch norm")
    p.add_argument("--out", default=None, type=output_file, metavar="FILE.h5",
                   help="where to write the weights (default out/shapes_ARCH.h5; the shipped model "
                        "weights/shapes_ARCH.h5 is replaced only when named here)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of data, initialisation and order (default 0)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--train-size", type=int, default=24000, help="training images (default 24000)")
    p.add_argument("--test-size", type=int, default=2000, help="held-out images (default 2000)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the training set (default 5)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=finite_float, default=1e-3, help="Adam's peak learning rate (default 1e-3)")
    p.add_argument("--dropout", type=finite_float, default=0.2,
                   help="dropout before the last layer, VGG only (default 0.2)")
    p.add_argument("--curriculum-steps", type=int, default=800, metavar="K",
                   help="steps over which silhouettes are mixed in (default 800; 0: none)")
    p.add_argument("--curriculum-share", type=finite_float, default=0.5, metavar="F",
                   help="share of silhouettes in the first batch (default 0.5)")
    p.add_argument("--resume", default=None, metavar="FILE.h5",
                   help="start from these weights (a shapes network) instead of a fresh initialisation")
    p.add_argument("--adversarial-eps", type=finite_float, default=0.0, metavar="EPS",
                   help="train on PGD adversarial images within this distance, in the model's input space "
                        "(default 0: plain training)")
    p.add_argument("--adversarial-steps", type=int, default=3, metavar="K", help="PGD steps per batch (default 3)")
    p.add_argument("--adversarial-norm", choices=("l2", "linf"), default="l2", help="the attack's ball (default l2)")
    p.add_argument("--adversarial-share", type=finite_float, default=1.0, metavar="F",
                   help="share of each batch replaced by its attack, the rest kept clean (default 1: all)")
    add_device_arg(p)
    args = p.parse_args(argv)
    args.out = args.out or f"out/shapes_{args.arch}.h5"
    return args


def build_model(arch, size, dropout, seed):
    """A fresh shapes network: the small VGG, or the small ResNet (each block starting as the identity)."""
    from models import resnet, shapes, vgg
    if arch == "resnet":
        return resnet.build(dict(RESNET, name="shapes_resnet", num_classes=len(shapes.CLASSES), input_size=size),
                            seed=seed, zero_init_residual=True)
    return vgg.build(vgg.VGGConfig("shapes_vgg", BLOCKS, fc=FC, num_classes=len(shapes.CLASSES),
                                   input_size=(size, size), dropout=dropout), seed=seed)


def same_architecture(a, b):
    """Whether two networks have the same layers (any input size: both pool or flatten the same way)."""
    return type(a) is type(b) and {k: v.shape for k, v in a.state_dict().items()} == \
        {k: v.shape for k, v in b.state_dict().items()}


def augment(x, rng):
    """A random symmetry of the square per batch: x (N, 3, H, W) rotated by k*90 degrees, maybe mirrored."""
    x = np.rot90(x, int(rng.integers(4)), axes=(2, 3))
    if rng.integers(2):
        x = x[:, :, :, ::-1]
    return np.ascontiguousarray(x)


def evaluate(model, x, y, batch=250):
    """Top-1 accuracy on x (N, 3, H, W) with true classes y (N,), ``batch`` images at a time."""
    from models import network
    return float((network.top1(model, x, chunk=batch) == y).mean())


def main(argv=None):
    args = parse_args(argv)
    for name in ("train_size", "test_size", "epochs", "batch", "size", "adversarial_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.adversarial_eps < 0:
        raise ValueError(f"--adversarial-eps must be >= 0, got {args.adversarial_eps}")
    if not 0 < args.adversarial_share <= 1:
        raise ValueError(f"--adversarial-share must be in (0, 1], got {args.adversarial_share}")
    check_device(args.device)
    replacing = os.path.exists(args.out)
    if replacing:
        shipped = PROJECT_ROOT / "weights" / f"shapes_{args.arch}.h5"
        shipped = os.path.samefile(args.out, shipped) if shipped.exists() else False
        warn(f"{args.out} exists: it will be replaced when training ends"
             + (f" (it is the shipped model; `git checkout weights/shapes_{args.arch}.h5` brings it back)"
                if shipped else ""))
    from tqdm import tqdm

    import minigrad as mg
    from minigrad import functional as F
    import models
    from models import network, preprocess, shapes
    from saliency.adversarial import pgd
    from saliency.transforms import valid_range

    t0 = time.perf_counter()
    meta = dict(META, resize=args.size, crop=args.size, input_size=(args.size, args.size))
    print(f"generating {args.train_size} training and {args.test_size} held-out images ({args.size}x{args.size})")
    images, labels, _, _ = shapes.make_dataset(args.train_size, seed=args.seed, size=args.size)
    x_train = np.stack([preprocess.normalise(im, meta) for im in images])            # (N, 3, H, W) float32
    images, y_test, _, _ = shapes.make_dataset(args.test_size, seed=args.seed + HELD_OUT_SEED_OFFSET,
                                               size=args.size)
    x_test = np.stack([preprocess.normalise(im, meta) for im in images])
    n_easy = args.curriculum_steps * args.batch if args.curriculum_steps and args.curriculum_share > 0 else 0
    if n_easy:
        images, y_easy, _, _ = shapes.make_dataset(n_easy, seed=args.seed + 2 * HELD_OUT_SEED_OFFSET,
                                                   size=args.size, clutter=False)
        x_easy = np.stack([preprocess.normalise(im, meta) for im in images])
    del images

    model = build_model(args.arch, args.size, args.dropout, args.seed)
    if args.resume:
        start = models.load(args.resume)
        if start.classes != list(shapes.CLASSES) or not same_architecture(start, model):
            raise ValueError(f"--resume {args.resume}: not a shapes network of this architecture (--arch {args.arch})")
        model.load_state_dict(start.state_dict())
        print(f"resuming from {args.resume}")
    model.meta, model.classes = meta, list(shapes.CLASSES)
    model.to(args.device)
    opt = mg.optim.Adam(model.parameters(), lr=args.lr)
    lo, hi = valid_range(meta)                             # the pixel range 0..1 in the model's input space
    rng = np.random.default_rng(args.seed)
    steps_per_epoch = math.ceil(args.train_size / args.batch)
    total, step = args.epochs * steps_per_epoch, 0
    t_train = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(args.train_size)
        seen = hits = 0
        loss_avg = None
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", unit="batch", leave=True)
        for i in bar:
            idx = order[i * args.batch:(i + 1) * args.batch]
            xb, yb = x_train[idx], labels[idx]
            k = int(len(idx) * args.curriculum_share * max(0.0, 1 - step / args.curriculum_steps)) if n_easy else 0
            if k:                                               # the curriculum: some silhouettes
                pick = rng.integers(0, n_easy, k)
                xb, yb = np.concatenate([x_easy[pick], xb[k:]]), np.concatenate([y_easy[pick], yb[k:]])
            xb = mg.to_device(augment(xb, rng), args.device)
            if args.adversarial_eps:                            # the first share of the batch, attacked
                a = max(1, round(len(idx) * args.adversarial_share))
                xb[:a] = pgd(model, xb[:a], mg.to_device(yb[:a], args.device), args.adversarial_eps,
                             args.adversarial_steps, args.adversarial_norm, lo, hi, rng)
            opt.lr = 0.5 * args.lr * (1 + math.cos(math.pi * step / total))   # cosine decay
            logits = model(mg.Tensor(xb))
            loss = F.cross_entropy(logits, mg.to_device(yb, args.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            pred = mg.backend.to_numpy(logits.data).argmax(1)
            hits += int((pred == yb).sum())
            seen += len(idx)
            loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
            bar.set_postfix(loss=f"{loss_avg:.3f}", acc=f"{hits / seen:.3f}")
        model.eval()
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch}: train accuracy {hits / seen:.4f}, held-out accuracy {acc:.4f}")
    minutes = (time.perf_counter() - t_train) / 60
    model.to("cpu")
    network.save(model, args.out)
    print(f"held-out accuracy {acc:.4f} on {args.test_size} images; training took {minutes:.1f} min "
          f"({(time.perf_counter() - t0) / 60:.1f} min in all); saved {args.out}"
          + (" (replaced the file that was there)" if replacing else ""))
    return 0


if __name__ == "__main__":
    run(main)
