"""Shared pieces of the saliency scripts: the common flags, targets, notes, files out.

Image loading and preparation live in models/preprocess.py (load_inputs, Input, resize_shorter).

Every output is written to a temporary name and renamed (render.save_png, save_npy), so an
interrupted or failed run never leaves a half-written file under --out.
"""
from pathlib import Path

import numpy as np

from _common import add_device_arg, add_weights_arg, finite_float, output_folder, warn
from models.files import atomic_path


def add_common_args(parser, image=True, target_help=None):
    """--weights, --image, --target, --device, --out, --save-npy (DESIGN.md's command line)."""
    add_weights_arg(parser)
    if image:
        parser.add_argument("--image", nargs="+", required=True, metavar="PATH",
                            help="one or more images (any format Pillow reads; grey, RGBA, palette and "
                                 "16-bit images are converted to RGB, with a note)")
    parser.add_argument("--target", metavar="C", default=None,
                        help=target_help or "class index or name (e.g. 281 or tabby); default: each "
                                            "image's top-1 class")
    add_device_arg(parser)
    parser.add_argument("--out", default="out", type=output_folder, metavar="DIR",
                        help="output folder (default out/)")
    parser.add_argument("--save-npy", action="store_true", help="also write the raw arrays as .npy")


def add_clip_arg(parser):
    parser.add_argument("--clip-percentile", type=finite_float, default=99.0, metavar="P",
                        help="show maps clipped at this percentile (default 99; 100 = min-max)")


def clip_percentile(args):
    """The checked --clip-percentile, as render's ``clip_percentile`` (None for min-max)."""
    if not 0 < args.clip_percentile <= 100:
        raise ValueError(f"--clip-percentile must be in (0, 100], got {args.clip_percentile}")
    return None if args.clip_percentile == 100 else args.clip_percentile


def resolve_target(spec, model):
    """None (top-1 later), or a class index from an index or a name (ambiguity is an error)."""
    if spec is None:
        return None
    from models import imagenet
    return imagenet.lookup(spec, model.classes)


def load_inputs(paths, model):
    """preprocess.load_inputs for ``model``, with each image's conversion notes on stderr."""
    from models import preprocess
    inputs = preprocess.load_inputs(paths, model.meta)
    for path, item in zip(paths, inputs):
        for note in item.notes:
            warn(f"{path}: {note}")
    return inputs


def class_label(model, index):
    """'281 tabby'; '281' alone for a network without class names (its classes are 'class_281')."""
    from models import imagenet
    name = imagenet.display_name(model.classes[index])
    return str(index) if name == f"class {index}" else f"{index} {name}"


def output_dir(path):
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def atomic_write(path, write):
    """Call ``write(f)`` on a binary file that becomes ``path`` only once complete (models.files)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def save_figure(fig, path, dpi=100):
    """A matplotlib figure as a PNG, atomically; the figure is closed."""
    import matplotlib.pyplot as plt
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)


def save_npy(path, array):
    """np.save, atomically."""
    atomic_write(path, lambda f: np.save(f, np.asarray(array)))
