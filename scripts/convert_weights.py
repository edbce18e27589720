#!/usr/bin/env python
"""Convert Keras or torchvision VGG weights, or torchvision ResNet weights, to the project's HDF5 format.

    python scripts/convert_weights.py vgg16_weights_tf_dim_ordering_tf_kernels.h5 --out weights/vgg16.h5
    python scripts/convert_weights.py vgg16-397923af.pth --out weights/vgg16_tv.h5 --arch vgg16
    python scripts/convert_weights.py resnet152-394f9c45.pth --out weights/resnet152.h5 --arch resnet152

The .pth is read without PyTorch, by an unpickler that refuses anything but tensors.
"""

from _common import ArgumentParser, output_file, run

ARCHS = ("vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def parse_args(argv=None):
    parser = ArgumentParser(
        description="Convert weights -- a Keras VGG .h5 (channels-last 'tf' files, with or without the "
                    "classifier), or a torchvision VGG or ResNet .pth state dict (legacy or zip "
                    "format) -- to the project's HDF5 weight file, with the preprocessing each source "
                    "expects (Keras: BGR, 0..255, minus the BGR mean; torchvision: RGB, 0..1, mean/std).",
        epilog="Exit status: 0 on success, 2 on bad input. The output is written to a temporary "
               "name and renamed, so a failed run leaves no partial file.")
    parser.add_argument("src", metavar="SRC", help="Keras .h5 or torchvision .pth file (VGG or ResNet)")
    parser.add_argument("--out", required=True, type=output_file, metavar="DST.h5", help="output file")
    parser.add_argument("--arch", choices=ARCHS,
                        help="expected architecture (default: inferred from the layers; given, it is checked)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from models import convert
    wf = convert.convert(args.src, args.out, arch=args.arch)
    n = sum(a.size for layer in wf.layers.values() for k, a in layer.items() if k in ("weight", "bias"))
    top = f"{len(wf.classes)} classes" if wf.config.get("num_classes") else "no classifier"
    m = wf.meta
    print(f"{args.src}: {wf.arch}, {len(wf.layers)} layers, {n:,} parameters, {top}, input "
          f"{m['input_size'][0]}x{m['input_size'][1]}; preprocessing {m['channel_order']}, "
          f"scale {m['scale']:g}, mean {m['mean']}, std {m['std']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
