#!/usr/bin/env python
"""Classify images with a network (VGG or ResNet): the top-k classes and their probabilities.

    python scripts/classify.py --image cat.jpg dog.png --top 5
    python scripts/classify.py --weights weights/vgg16.h5 --image cat.jpg --device gpu
    python scripts/classify.py --weights weights/vgg16.h5 --image cat.jpg --target "tabby cat" --out out --save-npy

It prints; with --out DIR it also writes DIR/classify.csv (one row per image and class shown:
image, rank, index, class, probability, logit, target), and with --save-npy each image's logits as
DIR/NAME_logits.npy (DIR: out/ when --out is not given).
"""
import argparse
import csv
import io
from pathlib import Path

import numpy as np

from _common import ArgumentParser, CLIError, add_device_arg, add_weights_arg, load_classifier, output_folder, run, warn
from _images import atomic_write, output_dir, save_npy


def parse_args(argv=None):
    parser = ArgumentParser(
        description="Classify images: print the top-k classes with their softmax probabilities. "
                    "Each image is resized and centre-cropped as the network's weight file says.",
        epilog="Exit status: 0 on success, 2 on bad input (unreadable image, bad weights file, ...).")
    add_weights_arg(parser)
    parser.add_argument("--image", nargs="+", required=True, metavar="PATH",
                        help="one or more image files (any format Pillow reads; grey, RGBA and "
                             "16-bit images are converted)")
    parser.add_argument("--top", type=int, default=5, metavar="K",
                        help="how many classes to show per image (default 5)")
    parser.add_argument("--target", metavar="C", default=None,
                        help="also report this class (index, name, WordNet id): its probability and rank")
    add_device_arg(parser)
    parser.add_argument("--out", default=None, type=output_folder, metavar="DIR",
                        help="also write DIR/classify.csv (default: print only)")
    parser.add_argument("--save-npy", action="store_true",
                        help="also write each image's logits as DIR/NAME_logits.npy (DIR: --out, else out/)")
    return parser.parse_args(argv)


CSV_HEADER = ["image", "rank", "index", "class", "probability", "logit", "target"]


def main(argv=None):
    args = parse_args(argv)
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    folder = args.out or ("out" if args.save_npy else None)
    if folder is not None and args.out is None:                     # out/ for --save-npy: writable?
        try:
            output_folder(folder)
        except argparse.ArgumentTypeError as e:
            raise CLIError(f"--save-npy: {e}") from None
    from models import imagenet, network, preprocess

    model = load_classifier(args.weights, args.device, args.image)
    target = None if args.target is None else imagenet.lookup(args.target, model.classes)
    k = min(args.top, len(model.classes))
    if k < args.top:
        warn(f"--top {args.top} is more than the {len(model.classes)} classes: showing {k}")
    rows, logits_of, stems = [], {}, set()
    for path in args.image:
        rgb, notes = preprocess.load_image(path)
        notes += [n for n in [preprocess.upscale_note(rgb.shape[:2], model.meta)] if n]
        for note in notes:
            warn(f"{path}: {note}")
        x = preprocess.prepare(rgb, model.meta)[None]                   # (1, 3, H, W) float32
        logits = network.logits(model, x)[0]                            # (num_classes,)
        probs = imagenet.softmax(logits.astype(np.float64))
        ranks = np.empty(len(probs), np.int64)
        ranks[np.argsort(-probs, kind="stable")] = np.arange(1, len(probs) + 1)   # as top_k orders them
        shown = [i for i, _, _ in imagenet.top_k(probs, model.classes, k)]
        if target is not None and target not in shown:
            shown.append(target)
        print(path)
        for i in shown:
            name = imagenet.display_name(model.classes[i])
            mark = "  <- target" if i == target else ""
            rank = f"{ranks[i]}." if ranks[i] <= k else f"({ranks[i]})"
            print(f"  {rank:>4} {probs[i]:7.2%}  {i:>4}  {name}  (logit {logits[i]:.3f}){mark}")
            rows.append([path, int(ranks[i]), i, name, f"{probs[i]:.6g}", f"{logits[i]:.6g}", int(i == target)])
        stem = Path(path).stem or "image"
        while stem in stems:                                            # two images with one stem
            stem += "_"
        stems.add(stem)
        logits_of[stem] = logits
    if folder is not None:
        out = output_dir(folder)
        written = []
        if args.out is not None:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows([CSV_HEADER] + rows)
            atomic_write(out / "classify.csv", lambda f: f.write(text.getvalue().encode("utf-8")))
            written.append(out / "classify.csv")
        if args.save_npy:
            for stem, logits in logits_of.items():
                save_npy(out / f"{stem}_logits.npy", logits)
                written.append(out / f"{stem}_logits.npy")
        print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    run(main)
