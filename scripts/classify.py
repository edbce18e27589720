#!/usr/bin/env python
"""Classify images with a VGG network: the top-k classes and their probabilities.

    python scripts/classify.py --image cat.jpg dog.png --top 5
    python scripts/classify.py --weights weights/vgg16.h5 --image cat.jpg --device gpu
"""
import argparse

import numpy as np

from _common import add_device_arg, add_weights_arg, load_model, run, warn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Classify images: print the top-k classes with their softmax probabilities. "
                    "Each image is resized and centre-cropped as the network's weight file says.",
        epilog="Exit status: 0 on success, 2 on bad input (unreadable image, bad weights file, ...).")
    add_weights_arg(parser)
    parser.add_argument("--image", nargs="+", required=True, metavar="PATH",
                        help="one or more image files (any format Pillow reads; grey, RGBA and "
                             "16-bit images are converted)")
    parser.add_argument("--top", type=int, default=5, metavar="K",
                        help="how many classes to show per image (default 5)")
    add_device_arg(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    import minigrad as mg
    from minigrad import backend
    from models import imagenet, preprocess

    model = load_model(args.weights, args.device, args.image)
    if model.config.fc is None:
        raise ValueError(f"{args.weights}: this network has no classifier (converted without its top)")
    k = min(args.top, len(model.classes))
    if k < args.top:
        warn(f"--top {args.top} is more than the {len(model.classes)} classes: showing {k}")
    for path in args.image:
        rgb, notes = preprocess.load_image(path)
        for note in notes:
            warn(f"{path}: {note}")
        x = preprocess.prepare(rgb, model.meta)[None]                   # (1, 3, H, W) float32
        x = backend.to_device(x, args.device)
        with mg.no_grad():
            logits = backend.to_numpy(model(mg.Tensor(x)).data)[0]      # (num_classes,)
        probs = imagenet.softmax(logits.astype(np.float64))
        print(path)
        for rank, (i, name, p) in enumerate(imagenet.top_k(probs, model.classes, k), 1):
            print(f"  {rank}. {p:7.2%}  {i:>4}  {imagenet.display_name(name)}  (logit {logits[i]:.3f})")
    return 0


if __name__ == "__main__":
    run(main)
