#!/usr/bin/env python
"""Sanity check of saliency maps by cascading model randomisation (Adebayo et al. 2018).

    python scripts/sanity_check.py --out out/sanity               # shipped model, held-out shapes images
    python scripts/sanity_check.py --weights weights/vgg16.h5 --image cat.jpg dog.jpg --out out/sanity

From the logits down, one more stage is re-initialised at each step, as at the start of training
(convolutions and fc layers He normal with zero bias; the batch norms after them weight 1, bias 0,
running statistics 0 and 1): on a VGG a stage is one weight layer, on a ResNet one residual block
(--stages layer: one weight layer). Each method's map is recomputed and compared with the trained
network's map: Spearman rank correlation of |map| and of the signed map (not for Grad-CAM and guided
Grad-CAM, whose maps have no sign: null in the JSON), and SSIM. Writes
DIR/sanity_check.json, DIR/sanity_check_maps.png (the maps per stage and method, first image) and
DIR/sanity_check_curves.png (the three measures per stage). A folder that already holds these files
(an earlier check) is refused unless --overwrite.
"""
import json

import numpy as np

from _common import (ArgumentParser, add_overwrite_arg, check_device, claim_outputs, load_classifier, non_negative_int,
                     positive_int, run)
from _images import (add_common_args, atomic_write, load_inputs, output_dir, resolve_target,
                     save_figure, save_npy)
from models.network import top1
from saliency.maps import METHODS

HELD_OUT_SEED = 31337          # a fresh set, never used in training (weights/README.md)
OUTPUTS = ("sanity_check.json", "sanity_check_maps.png", "sanity_check_curves.png", "sanity_check_maps.npy")


def parse_args(argv=None):
    p = ArgumentParser(description="Cascading model randomisation: do the saliency maps change when "
                                   "the network's weights are re-initialised, layer by layer from "
                                   "the top? (Adebayo et al. 2018)")
    add_common_args(p, image=False, target_help="class index or name for every image (default: the shapes "
                                                "images' true class, or each image's top-1 class)")
    p.add_argument("--image", nargs="+", metavar="PATH",
                   help="images to check (default: held-out images of the shapes task, for the shipped model)")
    p.add_argument("--n-images", type=positive_int, default=4, metavar="N",
                   help="how many held-out shapes images, without --image (default 4)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated, from {', '.join(METHODS)} (default: all)")
    p.add_argument("--smooth-n", type=positive_int, default=16, metavar="N", help="SmoothGrad samples (default 16)")
    p.add_argument("--stages", choices=("block", "layer"), default="block",
                   help="what one stage re-initialises: a block of the table (a ResNet's residual block; on "
                        "a VGG, a layer) or one weight layer (default block)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the re-initialisation and the noise (default 0)")
    add_overwrite_arg(p)
    return p.parse_args(argv)


def inputs_for(args, model):
    """(batch (N, 3, H, W), pictures (N, H, W, 3) uint8, targets (N,))."""
    from models import preprocess, shapes
    target = resolve_target(args.target, model)
    if args.image:
        items = load_inputs(args.image, model)
        batch = np.stack([it.x for it in items])
        pictures = np.stack([it.rgb for it in items])
        targets = top1(model, batch) if target is None else np.full(len(items), target)
        return batch, pictures, targets
    if list(model.classes) != list(shapes.CLASSES):
        raise ValueError("without --image the check uses shapes images, which this network does not classify: "
                         "give --image PATH")
    size = model.config.input_size[0]
    pictures, labels, _, _ = shapes.make_dataset(args.n_images, HELD_OUT_SEED, size=size)
    batch = preprocess.prepare_batch(list(pictures), model.meta)
    return batch, pictures, (labels if target is None else np.full(len(labels), target))


MAX_COLUMNS = 16               # stages shown in the maps figure (a ResNet-152 has 52)


def shown_stages(n, most=MAX_COLUMNS):
    """Indices of the stages the maps figure shows: all, or ``most`` evenly spaced, first and last kept."""
    return list(range(n)) if n <= most else sorted({round(k * (n - 1) / (most - 1)) for k in range(most)})


def maps_figure(stages, maps, picture, methods):
    """Rows: methods; columns: the image, then the stages (at most MAX_COLUMNS of them, evenly spaced).
    Each map scaled by its own maximum."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = shown_stages(len(stages))
    cols = len(shown) + 1
    fig, axes = plt.subplots(len(methods), cols, figsize=(1.3 * cols, 1.45 * len(methods) + 0.6), squeeze=False)
    for r, m in enumerate(methods):
        axes[r, 0].imshow(picture)
        axes[r, 0].set_ylabel(m)
        for c, s in enumerate(shown):
            stage, smap = stages[s], maps[m][s][0]
            axes[r, c + 1].imshow(smap / (smap.max() or 1), cmap="viridis", vmin=0, vmax=1)
            if r == 0:
                axes[r, c + 1].set_title("trained" if stage == "none" else f"-{stage}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=8)
    some = "" if len(shown) == len(stages) else f"; {len(shown)} of the {len(stages)} stages shown"
    fig.suptitle("maps as layers are re-initialised, top down (-L: L and every layer above it random); "
                 f"each map scaled to its own maximum (0..max -> viridis){some}", fontsize=8)
    return fig


def curves_figure(result):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = result["stages"]
    labels = {"spearman_abs": "Spearman of |map|", "spearman": "Spearman of the signed map",
              "ssim": "SSIM of |map| (each / its max)"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, label) in zip(axes, labels.items()):
        for m, values in result["methods"].items():
            if None not in values[key]:                          # the signed Spearman: not for Grad-CAM
                ax.plot(range(len(stages)), values[key], marker="o", label=m)
        ticks = shown_stages(len(stages), most=30)
        ax.set_xticks(ticks)
        ax.set_xticklabels(["trained" if s == 0 else f"-{stages[s]}" for s in ticks], rotation=60, fontsize=8)
        ax.set_xlabel("layers re-initialised (cumulative, from the top)")
        ax.set_title(label, fontsize=10)
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("similarity to the trained network's map")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    from saliency import sanity
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in sanity.METHODS]
    if bad or not methods:
        raise ValueError(f"--methods: unknown method {bad[0] if bad else '(none)'}; use {', '.join(sanity.METHODS)}")
    check_device(args.device)
    from tqdm import tqdm

    model = load_classifier(args.weights, args.device, args.image)
    batch, pictures, targets = inputs_for(args, model)
    claim_outputs(args.out, OUTPUTS, args.overwrite)
    out = output_dir(args.out)
    stages = len(sanity.stages(model, args.stages)) + 1
    with tqdm(total=stages * len(methods), desc="stages x methods", unit="map") as bar:
        result, maps = sanity.cascading_randomisation(model, batch, targets, methods=methods, seed=args.seed,
                                                      smooth_n=args.smooth_n, progress=bar, by=args.stages)
    atomic_write(out / "sanity_check.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    save_figure(maps_figure(result["stages"], maps, pictures[0], methods), out / "sanity_check_maps.png")
    save_figure(curves_figure(result), out / "sanity_check_curves.png")
    if args.save_npy:
        save_npy(out / "sanity_check_maps.npy", np.stack([np.stack(maps[m]) for m in methods]))
    width = max(len(s) for s in result["stages"])
    print(f"Spearman of |map| with the trained network's, mean over {len(batch)} images:")
    column = max(12, *(len(m) + 2 for m in methods))
    print(" " * width + "".join(f"{m:>{column}}" for m in methods))
    for s, stage in enumerate(result["stages"]):
        print(f"{stage:<{width}}" + "".join(f"{result['methods'][m]['spearman_abs'][s]:{column}.3f}"
                                            for m in methods))
    print(f"wrote {out / 'sanity_check.json'}, sanity_check_maps.png, sanity_check_curves.png")
    return 0


if __name__ == "__main__":
    run(main)
