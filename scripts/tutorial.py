#!/usr/bin/env python
"""The figure of a widely read tutorial of the paper, on any network (it used torchvision's ResNet-152).

    python scripts/tutorial.py --weights weights/resnet152.h5 --image flamingo.jpg banana.jpg tabby.jpg

1. The class model of --class (default: 130, flamingo, on a 1000-class network; else the first image's
   top-1 class) by the tutorial's recipe (scripts/class_model.py --preset tutorial): plain SGD on the
   image from the zero image, lr 6.0, 151 steps, loss -S_c + lambda ||I||_p (lambda 0.1, p 2 unless
   --lam, --p), a GIF frame every 10 steps.
2. The saliency map of each image (resized to the network's resize size, centre crop): the max over
   the colour channels of |dS_c/dI|, for the image's top-1 class (or --target).

Writes tutorial_class_model_C_NAME.png (the picture and its score curve) and .gif,
tutorial_NAME_saliency.png (the image and its map) for each image, and tutorial.png: all of them on one page, which says when the
class model's score fell or barely moved. A class model whose time estimate passes a day is refused
unless --yes. A folder that holds these files from an earlier run is refused unless --overwrite.
"""
import time

from _common import (ArgumentParser, add_overwrite_arg, check_device, claim_outputs, load_classifier,
                     non_negative_float, positive_int, remove_files, run, warn)
from _images import (add_clip_arg, add_common_args, class_label, clip_percentile, load_inputs, output_dir,
                     resolve_target, save_figure, save_npy)
from models.network import top1

FLAMINGO = 130                  # the tutorial's class, on a 1000-class (ImageNet) network
OUTPUTS = ("tutorial_*", "tutorial.png")          # every file this script writes, and no other script's
SETTINGS = dict(lr=6.0)                             # the tutorial's step size (lam and p: --lam, --p)


def parse_args(argv=None):
    p = ArgumentParser(description="The tutorial's figure: the class model of one class by its recipe "
                                   "(SGD lr 6 on -S_c + lambda ||I||_p, 151 steps) and the saliency "
                                   "map of each image.")
    add_common_args(p, target_help="class of the images' saliency maps (index or name; default: each "
                                   "image's top-1 class)")
    p.add_argument("--class", dest="class_", default=None, metavar="C",
                   help="class of the class model (index or name; default: 130, flamingo, on a 1000-class "
                        "network, else the first image's top-1 class)")
    p.add_argument("--steps", type=positive_int, default=151, help="class model: SGD steps (default 151)")
    p.add_argument("--lam", type=non_negative_float, default=0.1,
                   help="class model: weight lambda of ||I||_p (default 0.1)")
    p.add_argument("--p", type=int, choices=(1, 2), default=2, help="class model: the norm's p (default 2)")
    p.add_argument("--yes", action="store_true", help="run even when the class model's time estimate passes a day")
    add_clip_arg(p)
    add_overwrite_arg(p)
    return p.parse_args(argv)


def model_class(spec, model, first):
    """The class of the class model: ``spec`` (index or name), else flamingo on a 1000-class network,
    else the top-1 class of ``first`` (3, H, W)."""
    from models import imagenet
    if spec is not None:
        return imagenet.lookup(spec, model.classes)
    if len(model.classes) == 1000:
        return FLAMINGO
    return int(top1(model, first[None])[0])


def estimate(model, t, args):
    """Time a few steps of the class model; refuse (ValueError) a run estimated at more than a day
    unless --yes. Returns the seconds per step."""
    import class_model as cm
    from saliency.class_model import tutorial_class_model
    settings = dict(SETTINGS, lam=args.lam, p=args.p)
    tutorial_class_model(model, t, steps=1, **settings)                         # compiles the kernels
    t0 = time.perf_counter()
    tutorial_class_model(model, t, steps=2, **settings)
    per_step = (time.perf_counter() - t0) / 2
    what = f"class model of {class_label(model, t)}: {args.steps} steps"
    cm.check_estimate(per_step * args.steps, what, args.yes)
    return per_step


def class_model_part(model, t, args, out, per_step):
    """The class model of class ``t``: its figure and GIF written; returns (picture, title, warning),
    the warning '' unless the score fell or barely moved."""
    from tqdm import tqdm

    import class_model as cm
    from saliency.class_model import tutorial_class_model
    settings = dict(SETTINGS, lam=args.lam, p=args.p)
    print(f"class model of {class_label(model, t)}: {args.steps} steps, about {cm.duration(per_step * args.steps)} "
          f"at {per_step:.2f} s per step")
    with tqdm(total=args.steps, desc=f"class {class_label(model, t)}", unit="step") as bar:
        image, history = tutorial_class_model(model, t, steps=args.steps, snapshot_every=10, progress=bar,
                                              return_history=True, **settings)
    scores = history["scores"]
    picture, note = cm.picture_of(image, model, "tutorial")
    said = cm.verdict(model, picture)
    warning = cm.stall_note(scores)
    if warning:
        warn(f"class {class_label(model, t)}: {warning}")
    stem = "tutorial_" + cm.file_stem(model, t)
    title = (f"class {class_label(model, t)}: the network says class {class_label(model, said)}"
             + ("" if said == t else " !"))
    save_figure(cm.class_figure(picture, note, scores, title, warning), out / f"{stem}.png")
    frames = [cm.picture_of(im, model, "tutorial")[0] for _, im in history["snapshots"]]
    if frames:
        cm.save_gif(out / f"{stem}.gif", frames)
    if args.save_npy:
        save_npy(out / f"{stem}.npy", image)
    print(f"class model of {class_label(model, t)}: score {scores[0]:.3f} -> {scores[-1]:.3f}, picture classified "
          f"as {class_label(model, said)}; {out / (stem + '.png')}")
    return picture, f"class model of {class_label(model, t)}, S_c {scores[-1]:.4g}", warning


def main(argv=None):
    args = parse_args(argv)
    clip = clip_percentile(args)
    check_device(args.device)
    import numpy as np

    import minigrad as mg
    import saliency
    from saliency import render

    model = load_classifier(args.weights, args.device, args.image)
    target = resolve_target(args.target, model)
    inputs = load_inputs(args.image, model)
    t_model = model_class(args.class_, model, inputs[0].x)
    earlier = claim_outputs(args.out, OUTPUTS, args.overwrite, remove=False)
    per_step = estimate(model, t_model, args)
    remove_files(earlier)                                                        # --overwrite, once the run is allowed
    out = output_dir(args.out)
    shown, titles, maps, how = [], [], [], ""
    for item in inputs:
        t = int(top1(model, item.x[None])[0]) if target is None else target
        smap = mg.backend.to_numpy(saliency.saliency_map(saliency.input_gradient(model, item.x[None], t)))[0]
        heat, how = render.heatmap(smap, clip, return_text=True)
        picture = render.grid([item.rgb, heat], [item.name, f"saliency map, class {class_label(model, t)}"],
                              caption=f"max over channels of |dS_c/dI|, normalised {how}")
        render.save_png(out / f"tutorial_{item.name}_saliency.png", picture)
        if args.save_npy:
            save_npy(out / f"tutorial_{item.name}_saliency.npy", smap)
        print(f"{item.name}: class {class_label(model, t)} -> {out / f'tutorial_{item.name}_saliency.png'}")
        shown.append(item.rgb)
        titles.append(f"{item.name}: {class_label(model, t)}")
        maps.append(heat)
    picture, title, warning = class_model_part(model, t_model, args, out, per_step)
    blank = np.full_like(picture, 255)
    if warning:
        title += f"\n! {warning}"
    shown_model = render.Panel(picture, title_colour="darkred" if warning else "black")
    page = render.grid([shown_model] + shown + [blank] + maps,
                       [title] + titles + [""] + ["saliency map"] * len(maps), ncols=len(shown) + 1,
                       caption=f"class model: tutorial recipe (SGD lr 6 on -S_c + {args.lam:g} ||I||_{args.p}, "
                               f"{args.steps} steps from the zero image), stretched to the full range"
                               + (f"; ! {warning}: the ascent stalled" if warning else "")
                               + f"; saliency maps: max over channels of |dS_c/dI|, normalised {how}")
    render.save_png(out / "tutorial.png", page)
    print(f"the page: {out / 'tutorial.png'}")
    return 0


if __name__ == "__main__":
    run(main)
