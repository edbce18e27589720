#!/usr/bin/env python
"""The shapes task written out in the ILSVRC localisation format.

    python scripts/make_shapes_dataset.py --n 500 --seed 31337 --out data/shapes

writes
    OUT/images/shapes_00000.png ...        the images
    OUT/annotations/shapes_00000.xml ...   Pascal-VOC XML, one object each, <name> the class name,
                                           inclusive pixel boxes as in ILSVRC
    OUT/masks/shapes_00000.png ...         the object's mask (255 on the object)
    OUT/LOC_solution.csv                   the same boxes as a LOC_val_solution-style CSV

so that ``scripts/evaluate_localisation.py --images OUT/images --annotations OUT/annotations`` scores
it as it would score ILSVRC. Every file is written under a temporary name and renamed. A folder that
already holds such files (an earlier set, perhaps of another --n) is refused unless --overwrite, which
removes them first: one set never mixes with another.
"""
import io

import numpy as np

from _common import ArgumentParser, add_overwrite_arg, claim_outputs, non_negative_int, output_folder, run
from models.files import atomic_path

BENCHMARK_SEED = 31337             # held out: training used seeds 0 and 1_000_000
OUTPUTS = ("images/shapes_*.png", "masks/shapes_*.png", "annotations/shapes_*.xml", "LOC_solution.csv")


def parse_args(argv=None):
    p = ArgumentParser(description="Write generated shapes images with Pascal-VOC XML boxes and masks "
                                   "(the ILSVRC localisation format).")
    p.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    p.add_argument("--seed", type=non_negative_int, default=BENCHMARK_SEED,
                   help=f"image seed (default {BENCHMARK_SEED})")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64, the shipped model's)")
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    add_overwrite_arg(p)
    return p.parse_args(argv)


def voc_xml(name, size, class_name, box):
    """The Pascal-VOC annotation of one image with one object; ``box`` has exclusive ends."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return (f"<annotation>\n  <filename>{name}.png</filename>\n"
            f"  <size><width>{size}</width><height>{size}</height><depth>3</depth></size>\n"
            f"  <object>\n    <name>{class_name}</name>\n"
            f"    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1 - 1}</xmax><ymax>{y1 - 1}</ymax></bndbox>\n"
            "  </object>\n</annotation>\n")


def write_bytes(path, data):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_png(path, array):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def write_dataset(out, n, seed, size=64, progress=None):
    """Generate ``n`` shapes images (models.shapes.make_dataset) and write them under ``out``."""
    from pathlib import Path

    from models import shapes
    out = Path(out)
    images, labels, masks, boxes = shapes.make_dataset(n, seed=seed, size=size)
    rows = ["ImageId,PredictionString"]
    for k in range(n):
        name = f"shapes_{k:05d}"
        cls = shapes.CLASSES[int(labels[k])]
        write_png(out / "images" / f"{name}.png", images[k])
        write_png(out / "masks" / f"{name}.png", (masks[k] * np.uint8(255)).astype(np.uint8))
        write_bytes(out / "annotations" / f"{name}.xml", voc_xml(name, size, cls, boxes[k]).encode())
        x0, y0, x1, y1 = (int(v) for v in boxes[k])
        rows.append(f"{name},{cls} {x0} {y0} {x1 - 1} {y1 - 1}")
        if progress is not None:
            progress.update(1)
    write_bytes(out / "LOC_solution.csv", ("\n".join(rows) + "\n").encode())


def main(argv=None):
    args = parse_args(argv)
    if args.n < 1:
        raise ValueError("--n must be at least 1")
    if args.size < 16:
        raise ValueError("--size must be at least 16")
    claim_outputs(args.out, OUTPUTS, args.overwrite)
    from tqdm import tqdm
    with tqdm(total=args.n, desc="images", unit="image", disable=args.n < 50) as bar:
        write_dataset(args.out, args.n, args.seed, args.size, progress=bar)
    print(f"wrote {args.n} images, annotations and masks under {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
