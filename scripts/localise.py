#!/usr/bin/env python
"""Weakly supervised object localisation from a saliency map (paper Sec. 3.2).

    python scripts/localise.py --image cat.jpg
    python scripts/localise.py --image cat.jpg --method guided --crops 10

As the authors ran it: colour GMMs fit on the most salient (top 5%) and least salient (bottom 30%)
pixels, a GraphCut segmentation (gamma 150) that holds only the top 0.5% and bottom 0.5% to their
side, its largest connected component, and that component's bounding box. Writes NAME_localise.png
(image, map, labels, segmentation with its box) and prints the box twice: in the
pixels of the crop the network saw (64x64 for the shipped model, 224x224 for VGG16; with --crops 10,
of the whole image resized), and in the original image's pixels, as evaluate_localisation.py reports it.
"""

import numpy as np

from _common import ArgumentParser, check_device, finite_float, load_classifier, non_negative_float, positive_int, run
from _images import (add_common_args, class_label, load_inputs, output_dir, resolve_target, save_npy)
from models.network import top1
from saliency.localise import GAMMA, HARD, SOFT, check_quantiles
from saliency_map import METHODS, compute_map


def parse_args(argv=None):
    p = ArgumentParser(description="Localise the object of a class from its saliency map: GMM colour "
                                   "models + GraphCut + largest connected component + bounding box.")
    add_common_args(p)
    p.add_argument("--method", choices=METHODS, default="gradient", help="which saliency map (default gradient)")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1, help="1 or 10 crops for the map (default 1)")
    p.add_argument("--soft", type=finite_float, nargs=2, default=SOFT, metavar=("FG", "BG"),
                   help="quantiles of the map whose pixels the colour models are fit on: foreground at or "
                        "above FG, background at or below BG (default 0.95 0.30)")
    p.add_argument("--hard", type=finite_float, nargs=2, default=HARD, metavar=("FG", "BG"),
                   help="quantiles of the map whose pixels the cut holds to their side (default 0.995 0.005; "
                        "--hard equal to --soft with --gamma 50 is GrabCut's way)")
    p.add_argument("--components", type=positive_int, default=5, help="Gaussian components per colour model (5)")
    p.add_argument("--gamma", type=non_negative_float, default=GAMMA,
                   help="weight of the pairwise term, >= 0 (default 150, the authors')")
    return p.parse_args(argv)


def image_box(box, item, meta, crops):
    """A box (x0, y0, x1, y1, ends exclusive) in the pixels of the picture localised (the centre crop,
    or with 10 crops the whole image resized) -> the pixels of the original image it covers."""
    from models import preprocess
    from saliency.evaluation import scale_box
    if crops == 10:
        return scale_box(box, item.full.shape[:2], item.size)
    frame, top, left = preprocess.crop_window(item.size, meta)
    x0, y0, x1, y1 = box
    return scale_box((x0 + left, y0 + top, x1 + left, y1 + top), frame, item.size)


def main(argv=None):
    args = parse_args(argv)
    (soft_fg, soft_bg), (hard_fg, hard_bg) = args.soft, args.hard
    check_quantiles(args.soft, args.hard)                      # --soft FG BG, --hard FG BG
    if args.crops == 10 and args.method == "smoothgrad":
        raise ValueError("--crops 10 is not available with --method smoothgrad")
    check_device(args.device)
    import saliency
    from saliency import render

    model = load_classifier(args.weights, args.device, args.image)
    target = resolve_target(args.target, model)
    out = output_dir(args.out)
    for item in load_inputs(args.image, model):
        t = int(top1(model, item.x[None])[0]) if target is None else target
        smap = compute_map(model, item, t, args.method, args.crops)
        rgb = item.full if args.crops == 10 else item.rgb
        mask, box, d = saliency.localise(rgb, smap, args.soft, args.hard, args.components, args.gamma,
                                         return_details=True)
        labels = np.zeros_like(rgb)
        labels[d["soft_bg"]] = (110, 110, 200)                     # pale: fit the colours
        labels[d["soft_fg"]] = (240, 150, 130)
        labels[d["hard_bg"]] = (30, 30, 150)                       # strong: also clamped by the cut
        labels[d["hard_fg"]] = (220, 40, 20)
        result, _ = render.localisation_panel(rgb, mask, box, title="largest component + box")
        h, w = rgb.shape[:2]
        crop_box = tuple(int(v) for v in box)
        original = image_box(crop_box, item, model.meta, args.crops)
        where = f"the {w}x{h} crop's pixels" if args.crops == 1 else f"the {w}x{h} resized image's pixels"
        boxes = (f"box (x0, y0, x1, y1) = {crop_box} in {where}, {original} in the original "
                 f"{item.size[1]}x{item.size[0]} image's")
        caption = (f"class {class_label(model, t)}; {args.method} map, {render.scaling_caption(99)}; labels: "
                   f"red at or above the map's {soft_fg:.1%} quantile, blue at or below its {soft_bg:.1%} (the "
                   f"colour models' pixels), strong red and blue beyond {hard_fg:.1%} and {hard_bg:.1%} (held by "
                   f"the cut); GraphCut gamma {args.gamma:g}; {boxes}; x1 and y1 exclusive")
        picture = render.grid([rgb, render.heatmap(smap, 99), labels, render.overlay(rgb, d["graphcut_mask"].astype(np.float32), 0.4),
                               result], ["image", "saliency map", "soft and hard labels", "GraphCut", result.title],
                              ncols=5, caption=caption, legend=("outline", "found"))
        render.save_png(out / f"{item.name}_localise.png", picture)
        if args.save_npy:
            save_npy(out / f"{item.name}_localise_mask.npy", mask)
            save_npy(out / f"{item.name}_localise_map.npy", smap)
        print(f"{item.name}: class {class_label(model, t)}, {boxes}; {int(mask.sum())} pixels in the mask "
              f"-> {out / (item.name + '_localise.png')}")
    return 0


if __name__ == "__main__":
    run(main)
