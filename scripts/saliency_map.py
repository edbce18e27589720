#!/usr/bin/env python
"""Image-specific class saliency maps (paper Sec. 3.1): M_ij = max_c |dS_c/dI_(i,j,c)|, and beside
them SmoothGrad, Grad-CAM and guided Grad-CAM (saliency.maps.METHODS).

    python scripts/saliency_map.py --image cat.jpg                      # the top-1 class
    python scripts/saliency_map.py --image cat.jpg --target tabby --method guided
    python scripts/saliency_map.py --image cat.jpg --method gradcam     # at the last conv block
    python scripts/saliency_map.py --image cat.jpg --crops 10           # averaged over the 10 crops

For each image it writes NAME_METHOD.png (the image, the map and the overlay, titled), and
NAME_METHOD_map.png (the map alone, full resolution).
"""


from _common import ArgumentParser, check_device, load_classifier, finite_float, run
from _images import (add_clip_arg, add_common_args, class_label, clip_percentile, load_inputs,
                     output_dir, resolve_target, save_npy)
from models.network import top1
from saliency.maps import METHODS


def parse_args(argv=None):
    p = ArgumentParser(description="Write saliency maps of images for a class: the gradient of the "
                                   "class score with respect to the image (the paper), its "
                                   "deconvnet and guided-backprop variants, SmoothGrad, Grad-CAM "
                                   "or guided Grad-CAM.")
    add_common_args(p)
    p.add_argument("--method", choices=METHODS, default="gradient",
                   help="gradient (the paper), deconvnet, guided, smoothgrad, gradcam (Grad-CAM at the last "
                        "convolutional block) or guided-gradcam (default gradient)")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1,
                   help="1: the centre crop; 10: average the map over the 4 corner and centre crops and "
                        "their mirror images, in image coordinates (the paper's setting)")
    p.add_argument("--smooth-n", type=int, default=50, metavar="N", help="SmoothGrad samples (default 50)")
    p.add_argument("--smooth-sigma", type=finite_float, default=0.15, metavar="S",
                   help="SmoothGrad noise, relative to the image's range (default 0.15)")
    add_clip_arg(p)
    return p.parse_args(argv)


def compute_map(model, item, target, method, crops, n=50, sigma=0.15, progress=None):
    """The (h, w) map of one Input for class ``target`` (with 10 crops: (H, W), in item.full's frame)."""
    import saliency
    from models import preprocess
    from saliency.maps import method_maps
    if crops == 10:
        big = preprocess.normalise(item.full, model.meta)
        return saliency.ten_crop_saliency(model, big, target, method=method)
    return method_maps(model, item.x[None], target, method, smooth_n=n, smooth_sigma=sigma, progress=progress)[0]


def main(argv=None):
    args = parse_args(argv)
    clip = clip_percentile(args)
    if args.smooth_n < 1 or args.smooth_sigma < 0:
        raise ValueError("--smooth-n must be >= 1 and --smooth-sigma >= 0")
    if args.crops == 10 and args.method == "smoothgrad":
        raise ValueError("--crops 10 is not available with --method smoothgrad")
    check_device(args.device)
    from tqdm import tqdm

    from saliency import render

    model = load_classifier(args.weights, args.device, args.image)
    target = resolve_target(args.target, model)
    inputs = load_inputs(args.image, model)
    out = output_dir(args.out)
    steps = len(inputs) * (args.smooth_n if args.method == "smoothgrad" else 1)
    with tqdm(total=steps, desc=args.method, unit="pass", disable=steps < 4) as bar:
        for item in inputs:
            t = int(top1(model, item.x[None])[0]) if target is None else target
            smap = compute_map(model, item, t, args.method, args.crops, args.smooth_n, args.smooth_sigma,
                               progress=bar if args.method == "smoothgrad" else None)
            if args.method != "smoothgrad":
                bar.update(1)
            name = item.name
            shown = item.full if args.crops == 10 else item.rgb
            heat, how = render.heatmap(smap, clip, return_text=True)
            tag = f"{name}_{args.method}" + ("_10crops" if args.crops == 10 else "")
            picture = render.grid([shown, heat, render.overlay(shown, smap, clip_percentile=clip)],
                                  ["image", f"{args.method} map", "overlay"],
                                  caption=f"class {class_label(model, t)}; map normalised {how}")
            render.save_png(out / f"{tag}.png", picture)
            render.save_png(out / f"{tag}_map.png", heat)
            if args.save_npy:
                save_npy(out / f"{tag}.npy", smap)
            tqdm.write(f"{name}: class {class_label(model, t)} -> {out / (tag + '.png')}")
    return 0


if __name__ == "__main__":
    run(main)
