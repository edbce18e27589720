#!/usr/bin/env python
"""Class model visualisation (paper Sec. 2): the image that maximises a class score.

    python scripts/class_model.py                                 # every class of the shipped net, defaults
    python scripts/class_model.py --target star --paper           # the paper's plain recipe
    python scripts/class_model.py --preset tutorial --target 130 --weights weights/resnet152.h5 --sweep
    python scripts/class_model.py --target 130,281 --weights weights/vgg16.h5

Presets: "default" (random shifts, any rotation, scales 0.75..1.25 on a decorrelated 1/f^1.5 Fourier
image with an opacity channel, seen over a new random background each step, its mean opacity
penalised; Adam 0.05 on log p_c averaged over 4 draws a step, 512 steps), "lucid" (lucid's
published recipe: rotations -10..10, scales 0.9..1.1, a 1/f image, no opacity, on the logit S_c),
"paper" (gradient ascent on S_c - lambda ||I||^2 from the zero image, nothing else) and "tutorial"
(plain SGD lr 6.0 on -S_c + lambda ||I||_p, 151 steps, a snapshot every 10 steps; --sweep draws the
grid of lambda in {0.001, 0.1, 1.0} x p in {1, 2}). Writes class_model_C_NAME.png (the picture, how
it was scaled, and the score curve with axes), class_models.png (all classes, each titled with the
network's verdict) and class_model_scores.png (the score curves); .gif with --gif. A preset other than
the default puts its name at the end of each stem (class_model_C_NAME_paper.png, class_models_paper.png),
so that presets run into one folder keep their own files; a network without class names drops NAME.
A run whose time estimate passes a day is refused unless --yes. A folder that holds this preset's
files from an earlier run is refused unless --overwrite, which removes them (and no other preset's).
"""
import contextlib
import itertools
import time

import numpy as np

from _common import (ArgumentParser, add_overwrite_arg, check_device, claim_outputs, load_classifier, finite_float,
                     non_negative_int, remove_files, run, warn)
from _images import add_common_args, atomic_write, class_label, output_dir, save_figure, save_npy

PRESETS = ("default", "lucid", "paper", "tutorial")
SWEEP = [(p, lam) for p in (1, 2) for lam in (0.001, 0.1, 1.0)]
STALL = 1.0                     # a score that rose by less than this (logit units) has barely moved
DAY = 86400.0                   # seconds: a longer estimate needs --yes
IMAGENET_SELECTION = [130, 281, 954]   # flamingo, tabby, banana: the tutorial's classes


def parse_args(argv=None):
    p = ArgumentParser(description="Visualise what a network has learnt of a class: the image that "
                                   "maximises the class score (gradient ascent on the image).")
    add_common_args(p, image=False, target_help="class index or name, or a comma-separated list; 'all' for "
                                                "every class (default: all for a network of at most 20 classes, "
                                                "else a small stated selection)")
    p.add_argument("--preset", choices=PRESETS, default="default",
                   help="default (any rotation, scales 0.75..1.25, a transparent 1/f^1.5 Fourier image over "
                        "random backgrounds, Adam on log p_c), lucid (lucid's published transforms on an opaque "
                        "1/f image, on S_c), paper (the paper's plain recipe) or "
                        "tutorial (SGD lr 6 on -S_c + lambda ||I||_p, 151 steps)")
    p.add_argument("--paper", action="store_true", help="the same as --preset paper")
    values = preset_values()
    p.add_argument("--steps", type=int, default=None,
                   help=f"steps (default: the preset's: {each_preset(values, 'steps')})")
    p.add_argument("--lr", type=finite_float, default=None,
                   help=f"step size, > 0 (default: the preset's: {each_preset(values, 'lr')})")
    p.add_argument("--l2", type=finite_float, default=None, metavar="LAMBDA",
                   help=f"weight of ||I||^2 (default: the preset's: {each_preset(values, 'l2')}; not with "
                        "tutorial: --lam, --p)")
    p.add_argument("--lam", type=finite_float, default=0.1, help="tutorial: weight lambda of ||I||_p (default 0.1)")
    p.add_argument("--p", type=int, choices=(1, 2), default=2, help="tutorial: the norm's p (default 2)")
    p.add_argument("--sweep", action="store_true", help="tutorial: the grid of lambda 0.001, 0.1, 1.0 x p 1, 2")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF of the ascent (always "
                                                      "with the tutorial preset)")
    p.add_argument("--snapshot-every", type=int, default=None, metavar="K",
                   help="a GIF frame every K steps (default: steps/20; tutorial 10)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random transforms (default 0)")
    p.add_argument("--yes", action="store_true", help="run even when the time estimate passes a day")
    add_overwrite_arg(p)
    return p.parse_args(argv)


def preset_values():
    """{preset: its settings}: the library's PRESETS, and the tutorial's steps and lr from
    tutorial_class_model's own defaults."""
    import inspect

    from saliency.class_model import PRESETS as LIB, tutorial_class_model
    tutorial = inspect.signature(tutorial_class_model).parameters
    return {name: dict(LIB[name]) if name in LIB else {key: tutorial[key].default for key in ("steps", "lr")}
            for name in PRESETS}


def each_preset(values, key):
    """'default 0.05, lucid 0.05, paper 1.0, tutorial 6.0': each preset's value of ``key`` (those that have one)."""
    return ", ".join(f"{name} {values[name][key]}" for name in PRESETS if key in values[name])


def settings(args):
    """(preset, keyword arguments for saliency.class_model or tutorial_class_model)."""
    preset = "paper" if args.paper else args.preset
    if args.paper and args.preset not in ("default", "paper"):
        raise ValueError(f"--paper and --preset {args.preset} contradict each other")
    cfg = preset_values()[preset]
    if preset == "tutorial":
        cfg.update(lam=args.lam, p=args.p)
    for key in ("steps", "lr", "l2"):
        if getattr(args, key) is not None:
            if preset == "tutorial" and key == "l2":
                raise ValueError("--l2 is not part of the tutorial preset: use --lam and --p")
            if preset == "default" and key == "l2" and args.l2:
                raise ValueError("--l2 penalises an opaque picture: use it with --preset lucid or --paper, "
                                 "not the default (transparent) preset")
            cfg[key] = getattr(args, key)
    if args.sweep and preset != "tutorial":
        raise ValueError("--sweep belongs to --preset tutorial")
    return preset, cfg


def describe(preset, cfg):
    if preset == "tutorial":
        return f"tutorial: SGD lr {cfg['lr']}, loss -S_c + {cfg['lam']} ||I||_{cfg['p']}, {cfg['steps']} steps"
    if preset == "paper":
        return f"paper: x += {cfg['lr']} * d/dx (S_c - {cfg['l2']} ||x||^2), {cfg['steps']} steps from the zero image"
    transforms = (f"random transforms (jitter {'+'.join(map(str, cfg['jitter']))}, scale {min(cfg['scales']):g}.."
                  f"{max(cfg['scales']):g}, rotate +-{cfg['degrees']:g} deg) on a decorrelated Fourier image "
                  f"(1/f^{cfg['decay_power']:g})")
    if preset == "lucid":
        return f"lucid: {transforms}, Adam {cfg['lr']} on S_c, {cfg['steps']} steps"
    return (f"default: {transforms} with an opacity channel over random backgrounds (penalty "
            f"{cfg['opacity_penalty']:g} x mean opacity), Adam {cfg['lr']} on log p_c averaged over {cfg['batch']} "
            f"draws a step, {cfg['steps']} steps; shown over the mean colour")


def picture_of(image, model, preset):
    """uint8 picture and the sentence that says how it was scaled."""
    from models import preprocess
    if preset in ("default", "lucid"):           # the sigmoid keeps it in the pixel range: shown as is
        return preprocess.to_display(image, model.meta), "shown as is (in the pixel range by construction)"
    raw = preprocess.to_display(image, model.meta)
    pixels = _pixels(image, model.meta)
    lo, hi = float(pixels.min()), float(pixels.max())
    note = f"stretched: pixel values {lo:.2f}..{hi:.2f} (0..1 = black..white) mapped to the full range"
    return (preprocess.to_display(image, model.meta, stretch=True) if hi > lo else raw), note


def _pixels(image, meta):
    """The image in 0..1 pixel units, RGB (3, H, W)."""
    from models import preprocess
    mean, std, scale = preprocess.input_stats(meta)
    x = (image * std + mean) / scale
    return x[::-1] if meta["channel_order"].upper() == "BGR" else x


def verdict(model, picture):
    """The network's top-1 class of the picture as shown (uint8), through its own preprocessing."""
    from models import network, preprocess
    return int(network.top1(model, preprocess.normalise(picture, model.meta)[None])[0])


def stalled(scores):
    return scores[-1] - scores[0] < STALL


def stall_note(scores):
    """'' when the score rose by STALL or more, else the sentence that says it fell or barely moved."""
    first, last = scores[0], scores[-1]
    if not stalled(scores):
        return ""
    digits = next((d for d in range(2, 6) if f"{first:.{d}f}" != f"{last:.{d}f}"), 6)   # the change shows
    change = f"{first:.{digits}f} -> {last:.{digits}f}"
    if last < first:
        return f"the score fell: {change}"
    return f"the score barely moved: {change} (rose by less than {STALL:g})"


def duration(seconds):
    """'8.5 s', '40 s', '3.5 min', '2.1 h' or '2.5 days', whichever fits."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} days"


def check_estimate(total, what, yes):
    """Refuse (ValueError) a run estimated at more than a day, unless ``yes``."""
    if total > DAY and not yes:
        raise ValueError(f"{what} would take about {duration(total)}: give fewer --steps, or --yes to run it anyway")


def output_globs(preset):
    """(globs of the files ``preset`` writes into --out, globs of other presets' files that those
    match too): claim_outputs's ``patterns`` and ``keep``, so that presets never refuse or remove
    each other's files."""
    def globs(name):
        if name == "default":
            return ["class_model_*", "class_models.png"]
        return ([f"class_model_*_{name}.*", f"class_model_*_{name}_p*", f"class_models_{name}.png"]
                + (["class_model_sweep_*"] if name == "tutorial" else []))
    return globs(preset), [g for name in PRESETS if name not in (preset, "default") for g in globs(name)]


def file_stem(model, target, preset="default"):
    """class_model_C_NAME, with _PRESET at the end for a preset other than the default; without
    NAME for a network without class names (its classes are 'class_C')."""
    from models import imagenet
    name = imagenet.display_name(model.classes[target])
    stem = f"class_model_{target}" + ("" if name == f"class {target}" else
                                      "_" + name.replace(" ", "_").replace("/", "_"))
    return stem + ("" if preset == "default" else f"_{preset}")


def class_figure(picture, note, scores, title, warning):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.5, 3.6), gridspec_kw={"width_ratios": [1, 1.4]})
    a.imshow(picture, interpolation="nearest")
    a.set_xticks([])
    a.set_yticks([])
    a.set_title(title, fontsize=9)
    a.set_xlabel(note, fontsize=7, wrap=True)
    b.plot(np.arange(len(scores)), scores)
    b.set_xlabel("step")
    b.set_ylabel("class score S_c (logit)")
    b.grid(alpha=0.3)
    if warning:
        b.set_title(warning, color="darkred", fontsize=8)
    fig.tight_layout()
    return fig


def grid_figure(pictures, titles, caption, ncols=5):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(pictures)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    lines = max(t.count("\n") + 1 for t in titles)            # room for the longest title above each row
    row_height = max(2.1, 1.8 + 0.25 * lines)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols, row_height * nrows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, pic, title in zip(axes.ravel(), pictures, titles):
        ax.imshow(pic, interpolation="nearest")
        ax.set_title(title, fontsize=8, color="darkred" if "!" in title else "black")
    fig.suptitle(caption, fontsize=8, wrap=True)
    fig.tight_layout()
    return fig


def curves_figure(curves, caption):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, scores in curves:
        ax.plot(np.arange(len(scores)), scores, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("class score S_c (logit)")
    ax.set_title(caption, fontsize=8, wrap=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def save_gif(path, frames, duration=80):
    """Animated GIF, written atomically."""
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                duration=duration, loop=0))


def choose_targets(spec, model):
    from models import imagenet
    n = len(model.classes)
    if spec == "all" or (spec is None and n <= 20):
        return list(range(n))
    if spec is None:
        chosen = IMAGENET_SELECTION if n == 1000 else [0, 1, 2]
        warn(f"this network has {n} classes: making class models of {len(chosen)} of them only ("
             + ", ".join(class_label(model, t) for t in chosen) + "); name others with --target, or --target all")
        return chosen
    return [imagenet.lookup(t.strip(), model.classes) for t in spec.split(",")]


def run_all(model, targets, preset, cfg, snap, seed, runs, per, progress=True):
    """(image, history) of every class and setting, in the order of ``targets`` x ``runs``, each when done:
    ``per`` classes side by side (saliency.class_models, the library's recipes: one batch through the
    network a step), or one at a time (the paper's and the tutorial's plain loops, ``per`` 1)."""
    import saliency
    from tqdm import tqdm
    bar = (lambda desc: tqdm(total=cfg["steps"], desc=desc, unit="step")) if progress else \
        (lambda desc: contextlib.nullcontext())
    if preset not in ("tutorial", "paper"):
        for group in (targets[i:i + per] for i in range(0, len(targets), per)):
            with bar(f"class {class_label(model, group[0])}" + (f" .. {class_label(model, group[-1])}, side by side"
                                                               if len(group) > 1 else "")) as b:
                done = saliency.class_models(model, group, snapshot_every=snap, progress=b, return_history=True,
                                             seed=seed, **cfg)
            yield from done                                                # (each bar closed before its results)
        return
    for t, setting in itertools.product(targets, runs):
        run_cfg = dict(cfg, p=setting[0], lam=setting[1]) if setting else cfg
        with bar(f"class {class_label(model, t)}") as b:
            done = (saliency.tutorial_class_model(model, t, snapshot_every=snap, progress=b, return_history=True,
                                                  **run_cfg) if preset == "tutorial" else   # or the paper's plain loop
                    saliency.paper_class_model(model, t, cfg["steps"], cfg["lr"], cfg["l2"], snapshot_every=snap,
                                               progress=b, return_history=True))
        yield done


def main(argv=None):
    args = parse_args(argv)
    preset, cfg = settings(args)
    if cfg["steps"] < 1:
        raise ValueError(f"--steps must be at least 1, got {cfg['steps']}")
    if not cfg["lr"] > 0:
        raise ValueError(f"--lr must be > 0 (a step up the score), got {cfg['lr']:g}")
    if (args.snapshot_every or 0) < 0 or cfg.get("l2", 0) < 0 or args.lam < 0:
        raise ValueError("--snapshot-every, --l2 and --lam must be >= 0")
    check_device(args.device)
    from tqdm import tqdm

    from models import imagenet

    model = load_classifier(args.weights, args.device)
    targets = choose_targets(args.target, model)
    mine, others = output_globs(preset)
    earlier = claim_outputs(args.out, mine, args.overwrite, keep=others, remove=False)
    gif = args.gif or preset == "tutorial"
    snap = args.snapshot_every or (10 if preset == "tutorial" else max(1, cfg["steps"] // 20)) if gif else 0
    runs = [(p, lam) for p, lam in SWEEP] if args.sweep else [None]

    from saliency.class_model import Recipe, classes_per_batch
    per = 1 if preset in ("tutorial", "paper") else classes_per_batch(model, Recipe(**cfg))
    trial = targets[:per]                                                 # one group of classes side by side
    list(run_all(model, trial, preset, dict(cfg, steps=1), 0, args.seed, runs[:1], per, False))   # compiles the kernels
    t0 = time.perf_counter()                                                                      # then times 3 steps
    list(run_all(model, trial, preset, dict(cfg, steps=3), 0, args.seed, runs[:1], per, False))
    per_step = (time.perf_counter() - t0) / 3
    total = per_step * cfg["steps"] * -(-len(targets) // per) * len(runs)
    what = f"{len(targets)} class(es) x {len(runs)} setting(s) x {cfg['steps']} steps"
    check_estimate(total, what, args.yes)
    remove_files(earlier)                                                        # --overwrite, once the run is allowed
    print(f"{what}: about {duration(total)} at {per_step * 1000:.0f} ms per step"
          + (f" of {len(trial)} classes side by side" if len(trial) > 1 else ""))
    out = output_dir(args.out)
    results = run_all(model, targets, preset, cfg, snap, args.seed, runs, per)   # each as soon as it is done

    pictures, titles, curves = [], [], []
    for t in targets:
        sweep_pics, sweep_titles = [], []
        for setting in runs:
            image, history = next(results)
            scores = history["scores"]
            picture, note = picture_of(image, model, preset)
            said = verdict(model, picture)
            warning = stall_note(scores)
            if warning:
                warn(f"class {class_label(model, t)}: {warning}")
            tag = f"_p{setting[0]}_lam{setting[1]:g}" if setting else ""
            stem = file_stem(model, t, preset) + tag
            title = (f"class {class_label(model, t)}{tag.replace('_', ' ')}: the network says "
                     f"class {class_label(model, said)}" + ("" if said == t else " !"))
            save_figure(class_figure(picture, note, scores, title, warning), out / f"{stem}.png")
            if gif and history["snapshots"]:
                frames = [np.repeat(np.repeat(picture_of(im, model, preset)[0], max(1, 256 // picture.shape[0]), 0),
                                    max(1, 256 // picture.shape[1]), 1) for _, im in history["snapshots"]]
                save_gif(out / f"{stem}.gif", frames)
            if args.save_npy:
                save_npy(out / f"{stem}.npy", image)
            tqdm.write(f"class {class_label(model, t)}{tag}: score {scores[0]:.3f} -> {scores[-1]:.3f}, "
                       f"picture classified as {class_label(model, said)}; {out / (stem + '.png')}")
            sweep_pics.append(picture)
            sweep_titles.append(f"p {setting[0]}, lambda {setting[1]:g}" if setting else "")
            pictures.append(picture)
            titles.append(f"{imagenet.display_name(model.classes[t])}{tag.replace('_', ' ')}"
                          + ("" if said == t else f"\n! seen as {imagenet.display_name(model.classes[said])}")
                          + ("\n! " + warning.split(":")[0].removeprefix("the ") if warning else ""))  # score fell / ...
            curves.append((titles[-1].split("\n")[0], scores))
        if args.sweep:
            sweep = file_stem(model, t).replace("class_model_", "class_model_sweep_", 1)
            save_figure(grid_figure(sweep_pics, sweep_titles, f"class {class_label(model, t)}; "
                                    f"{describe(preset, cfg)}; rows p = 1, 2; columns lambda = 0.001, 0.1, 1.0; "
                                    "each picture stretched to the full range", ncols=3), out / f"{sweep}.png")
    how = ("pictures shown as is" if preset in ("default", "lucid") else "each picture stretched to the full range")
    how += f"; '! score barely moved': it rose by less than {STALL:g}; '! score fell': it ended lower"
    if len(pictures) > 1:
        suffix = "" if preset == "default" else f"_{preset}"
        grid, curve_file = out / f"class_models{suffix}.png", out / f"class_model_scores{suffix}.png"
        caption = (f"class models ({describe(preset, cfg)}); {how}; '!' = the network classifies "
                   "the picture as another class")
        save_figure(grid_figure(pictures, titles, caption), grid)
        save_figure(curves_figure(curves, f"class scores during the ascent ({describe(preset, cfg)})"), curve_file)
        print(f"all classes: {grid}, scores: {curve_file}")
    return 0


if __name__ == "__main__":
    run(main)
