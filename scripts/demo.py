#!/usr/bin/env python
"""The whole paper on the two shipped shapes networks, a VGG and a ResNet, side by side, offline, in a
few minutes on a CPU.

    python scripts/demo.py                 # writes out/
    python scripts/demo.py --fast          # a quick smoke run (fewer images and steps)
    python scripts/demo.py --weights weights/shapes_vgg.h5     # one network (any shapes network)

Generates held-out test images (one per class), and writes:
  out/images/               the test images
  out/saliency/             per image: each network's gradient, deconvnet and guided maps, and its localisation
  out/demo_class_models.png each network's class model of every class (paper Sec. 2), titled with its score
                            and what the other network calls the picture
  out/saliency_summary.png  the maps and localisations of every image on one page
  out/summary.png           all of it on one page, with a legend and a caption saying how maps are scaled
and, at the end, prints which network calls which class models their class (each network judges
every network's pictures) and lists what it wrote. A folder that already holds such files (an earlier
run, perhaps a --fast one) is refused unless --overwrite, which removes them first.
"""
import time

import numpy as np

from _common import ArgumentParser, DEFAULT_WEIGHTS, SHAPES_RESNET, PROJECT_ROOT, add_device_arg, add_overwrite_arg, \
    check_device, claim_outputs, load_model, output_folder, positive_int, run
from _images import output_dir, save_npy
from models.network import top1
from saliency.localise import GAMMA, HARD, SOFT

DEMO_SEED = 2013                       # the paper's year; any seed the training did not use
CLIP = 99                              # heat maps: each map's 99th percentile and above is the top colour
LOCALISE = dict(soft=SOFT, hard=HARD, gamma=GAMMA)     # saliency.localise's defaults: the authors' settings
LEGEND = ("outline", "found", "truth")
OUTPUTS = ("images/[0-9][0-9]_*.png", "saliency/[0-9][0-9]_*.png", "saliency/[0-9][0-9]_*.npy",
           "demo_class_models.png", "saliency_summary.png", "summary.png")


def map_caption():
    """What the saliency panels show and how they were scaled, in words."""
    from saliency import render
    return ("Saliency maps (Sec. 3): max over colour channels of |dS_c/dI| for the true class c, one backward pass "
            "under each ReLU rule; " + render.scaling_caption(CLIP) + ". Localisation (Sec. 3.2), as the authors ran "
            f"it: colour GMMs on the gradient map's top {1 - LOCALISE['soft'][0]:.0%} and bottom "
            f"{LOCALISE['soft'][1]:.0%} pixels, GraphCut (gamma {LOCALISE['gamma']:g}) holding its top "
            f"{1 - LOCALISE['hard'][0]:.1%} and bottom {LOCALISE['hard'][1]:.1%} to their side, its largest "
            "connected component and that component's box.")


def class_score(model, image, c):
    """(S_c, softmax p_c) of the (3, H, W) model-space image for class c."""
    from models import imagenet, network
    logits = network.logits(model, image[None])[0]
    return float(logits[c]), float(imagenet.softmax(logits)[c])


def summary_page(rows, ncols, class_images, class_titles, class_cols, heat_label, caption):
    """One page: a row of panels per image, then the class models, a legend, a colour bar, a caption."""
    from saliency import render
    cell, width = 1.4, max(ncols, class_cols) * 1.5
    strip_rows = -(-len(class_images) // class_cols)
    class_cell = width / class_cols - 0.1
    fig = render.new_figure(width, len(rows) * (cell + 0.4) + strip_rows * (class_cell + 0.5) + 3.2)
    top, bottom = fig.subfigures(2, 1, height_ratios=[len(rows) * (cell + 0.4),
                                                      strip_rows * (class_cell + 0.5) + 0.3])
    render.draw_panels(top, [p for row in rows for p in row], ncols, cell)
    bottom.suptitle("class models", fontsize=render.FONT_SIZE + 1)
    render.draw_panels(bottom, [render.Panel(im, t) for im, t in zip(class_images, class_titles)], class_cols,
                       class_cell)
    return render.to_array(render.finish(fig, caption, LEGEND, heat_label, bar_under=top))


def class_models(nets, names, prefix, steps):
    """Each network's class model of every class (the library's default recipe), and every picture, as
    shown, judged by every network. Returns the pictures (uint8), their titles, and ``judged[i][j]``:
    network j's top-1 class of network i's picture of each class."""
    import saliency
    from models import preprocess
    from saliency.class_model import classes_per_batch
    from tqdm import tqdm
    pictures, titles = [], []
    for i, model in enumerate(nets):
        classes = range(len(model.classes))
        groups = -(-len(classes) // classes_per_batch(model))              # the bar counts each group's steps
        with tqdm(total=steps * groups, desc=f"class models ({names[i]}, classes side by side)", unit="step") as bar:
            images = saliency.class_models(model, classes, steps=steps, progress=bar)
        for c, image in zip(classes, images):
            pictures.append(preprocess.to_display(image, model.meta))    # in the pixel range: shown as is
            score, prob = class_score(model, image, c)
            titles.append(f"{prefix[i]}{model.classes[c]}\nS_c {score:.1f}, p {prob:.0%}")
    n = len(nets[0].classes)
    judged = [[top1(judge, np.stack([preprocess.normalise(p, judge.meta) for p in pictures[i * n:(i + 1) * n]]))
               for judge in nets] for i in range(len(nets))]
    for i in range(len(nets)):
        for c in range(n):
            titles[i * n + c] += "".join(f"\n{names[j]}: {nets[j].classes[judged[i][j][c]]}"
                                         + ("" if judged[i][j][c] == c else " !") for j in range(len(nets)) if j != i)
    return pictures, titles, judged


def network_names(nets):
    """A short name per network for titles and tables: its class ("VGG", "ResNet"), numbered when repeated."""
    names = [type(m).__name__ for m in nets]
    return [f"{n} {names[:i].count(n) + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def cross_table(names, judged):
    """Lines of a table: for the class models of each network (rows), how many each network (columns)
    calls their class. ``judged[i][j]``: network j's top-1 class of network i's picture of each class."""
    width = max(len(n) for n in names) + 2
    lines = [f"{'made by':<{width}}" + "".join(f"{'judged by ' + n:>{width + 10}}" for n in names)]
    for i, row in enumerate(judged):
        lines.append(f"{names[i]:<{width}}" + "".join(
            f"{f'{own_class(v)}/{len(v)}':>{width + 10}}" for v in row))
    return lines


def own_class(verdicts):
    """How many pictures (one per class, in class order) are called their own class."""
    return int(sum(int(v) == c for c, v in enumerate(verdicts)))


def cross_sentence(names, judged):
    """The cross-classification in words, for the caption."""
    parts = [f"the {names[j]} calls {own_class(judged[i][j])}/{len(judged[i][j])} of the {names[i]}'s class models "
             "their class" for i in range(len(names)) for j in range(len(names)) if i != j]
    own = ", ".join(f"the {n} {own_class(judged[i][i])}/{len(judged[i][i])}" for i, n in enumerate(names))
    return f"Each network judges every other's class models (as shown): {'; '.join(parts)} (its own: {own})."


#: what the demo's outputs are, for the listing at the end (a file not named here is listed bare)
CONTENTS = {"summary.png": "everything on one page", "saliency_summary.png": "the maps and localisations",
            "demo_class_models.png": "each network's class model of every class", "images": "the test images",
            "saliency": "maps and localisation per image"}


def listing(out, since):
    """One aligned line per file or folder under ``out`` that this run wrote (modified since the
    time ``since``, less a second for coarse file-system clocks), with what it holds."""
    def fresh(path):
        return path.is_file() and path.stat().st_mtime >= since - 1
    rows = []
    for path in sorted(out.iterdir(), key=lambda p: (p.is_dir(), p.name)):
        if path.is_dir():
            n = sum(map(fresh, path.rglob("*")))
            if n:
                rows.append((f"{path}/", f"{CONTENTS.get(path.name, '')} ({n} file{'s' * (n != 1)})".strip()))
        elif fresh(path):
            rows.append((str(path), CONTENTS.get(path.name, "")))
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name:<{width}}  {what}".rstrip() for name, what in rows]


def parse_args(argv=None):
    p = ArgumentParser(description="Run every method of the paper on the shipped demo networks (a VGG and "
                                   "a ResNet, side by side) and write the pictures to --out.")
    shipped = [str(w.relative_to(PROJECT_ROOT)) for w in (DEFAULT_WEIGHTS, SHAPES_RESNET)]
    p.add_argument("--weights", nargs="+", metavar="FILE.h5", default=[str(DEFAULT_WEIGHTS), str(SHAPES_RESNET)],
                   help="one or more shapes networks, shown side by side; each one's class models are also "
                        f"judged by the others (default: the shipped {' and '.join(shipped)})")
    add_device_arg(p)
    p.add_argument("--out", default="out", type=output_folder, metavar="DIR", help="output folder (default out/)")
    p.add_argument("--fast", action="store_true", help="3 images and 20 class-model steps (a smoke test)")
    p.add_argument("--steps", type=positive_int, default=100, help="class-model steps per class (default 100; the "
                                                        "library's default is 512)")
    p.add_argument("--save-npy", action="store_true", help="also write the raw maps as .npy")
    add_overwrite_arg(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)
    t0, started = time.perf_counter(), time.time()
    from tqdm import tqdm

    import minigrad as mg
    from minigrad import relu_rules
    import saliency
    from models import preprocess, shapes
    from saliency import render
    from saliency.class_model import PRESETS

    nets = [load_model(w, args.device) for w in args.weights]
    for w, model in zip(args.weights, nets):
        if model.classes != list(shapes.CLASSES):
            raise ValueError(f"{w}: the demo needs a shapes network (its classes are {shapes.CLASSES})")
    sizes = {tuple(m.config.input_size) for m in nets}
    if len(sizes) > 1:
        raise ValueError(f"--weights: the networks take different input sizes ({', '.join(map(str, sizes))})")
    names = network_names(nets)
    tags = [n.lower().replace(" ", "") for n in names]
    prefix = [f"{n}: " if len(nets) > 1 else "" for n in names]
    size = nets[0].config.input_size[0]
    claim_outputs(args.out, OUTPUTS, args.overwrite)
    out = output_dir(args.out)
    for sub in ("images", "saliency"):
        (out / sub).mkdir(exist_ok=True)

    # Held-out images: the first of each class from a seed the training never used.
    images, labels, masks, boxes = shapes.make_dataset(60, seed=DEMO_SEED, size=size)
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(len(shapes.CLASSES))]
    picks = picks[:3] if args.fast else picks
    steps = 20 if args.fast else args.steps
    rows, ious = [], [[] for _ in nets]
    heat_label = f"saliency map value: 0 = the map's minimum, 1 = its {CLIP:g}th percentile and above"
    with tqdm(total=len(picks) * len(nets), desc="maps and localisation", unit="map set") as bar:
        for k in picks:
            rgb, label = images[k], int(labels[k])
            name = f"{k:02d}_{shapes.CLASSES[label]}"
            render.save_png(out / "images" / f"{name}.png", rgb)
            row = [render.Panel(rgb, f"image: {shapes.CLASSES[label]}")]
            for i, model in enumerate(nets):
                x = preprocess.normalise(rgb, model.meta)[None]
                maps = {r: mg.backend.to_numpy(saliency.saliency_map(
                            saliency.input_gradient(model, x, label, rule=r)))[0] for r in relu_rules.RULES}
                mask, box = saliency.localise(rgb, maps["gradient"], **LOCALISE)
                panel, iou = render.localisation_panel(rgb, mask, box, tuple(int(v) for v in boxes[k]),
                                                       title=f"{prefix[i]}GraphCut")
                row += [render.Panel(render.heatmap(maps[r], CLIP), prefix[i] + r) for r in relu_rules.RULES] + [panel]
                if args.save_npy:
                    for r in relu_rules.RULES:
                        save_npy(out / "saliency" / f"{name}_{tags[i]}_{r}.npy", maps[r])
                ious[i].append(iou)
                tqdm.write(f"{name} ({names[i]}): GraphCut box {tuple(int(v) for v in box)}, "
                           f"{panel.title.splitlines()[-1]}")
                bar.update(1)
            render.save_png(out / "saliency" / f"{name}.png",
                            render.grid(row, ncols=len(row), min_size=140, legend=LEGEND, colourbar=heat_label,
                                        caption=f"class {label} {shapes.CLASSES[label]}. {map_caption()}"))
            rows.append(row)

    pictures, titles, judged = class_models(nets, names, prefix, steps)
    d = PRESETS["default"]                                 # the caption says what the library's default is
    turn = "any rotation" if d["degrees"] >= 180 else f"rotation +-{d['degrees']:g} deg"
    class_caption = (f"Class models (Sec. 2), the library's default: {steps} steps of Adam {d['lr']:g} on log p_c, "
                     f"averaged over {d['batch']} draws of transform and background a step, with random transforms "
                     f"(pad, jitter, scale {min(d['scales']):g}..{max(d['scales']):g}, {turn}) "
                     f"on a decorrelated 1/f^{d['decay_power']:g} Fourier image with an opacity channel, seen over "
                     "random backgrounds, its mean opacity penalised; shown over the "
                     "mean colour; titled with the class, its score S_c (the logit) and softmax probability p on "
                     "the final image"
                     + (", and each other network's top-1 class of the picture as shown ('!': not this class)"
                        if len(nets) > 1 else "") + ". Each image is shown with the preprocessing mean added back, "
                     "pixels as they are (no stretching).")
    if len(nets) > 1:
        print("class models called their class (top-1 of the picture as shown), of one per class:")
        for line in cross_table(names, judged):
            print("  " + line)
        class_caption += " " + cross_sentence(names, judged)
    class_cols = len(shapes.CLASSES) if len(nets) > 1 else 5
    render.save_png(out / "demo_class_models.png", render.grid(pictures, titles, ncols=class_cols, min_size=140,
                                                          caption=class_caption))

    verdict = "; ".join(f"{prefix[i]}{sum(iou >= render.IOU_PASS for iou in ious[i])} of {len(ious[i])} GraphCut "
                        "boxes pass" for i in range(len(nets)))
    verdict += (f": IoU with the truth box ≥ {render.IOU_PASS:g}, the paper's criterion (each box's IoU is "
                "written above it).")
    print(verdict)
    render.save_png(out / "saliency_summary.png",
                    render.grid([p for row in rows for p in row], ncols=len(rows[0]), min_size=140, legend=LEGEND,
                                colourbar=heat_label, caption=f"{map_caption()}\n{verdict}"))
    render.save_png(out / "summary.png", summary_page(rows, len(rows[0]), pictures, titles, class_cols, heat_label,
                                                      f"{map_caption()}\n{verdict}\n{class_caption}"))
    print(f"done in {time.perf_counter() - t0:.0f} s. Pictures in {out}/:")
    for line in listing(out, started):
        print(line)
    return 0


if __name__ == "__main__":
    run(main)
