#!/usr/bin/env python
"""The paper's Sec. 4 on your image: deconvnet reconstruction = gradient with another ReLU rule.

    python scripts/deconvnet.py --image cat.jpg                       # from the top-1 class score
    python scripts/deconvnet.py --image cat.jpg --layer conv5_3       # from layer n's strongest unit
    python scripts/deconvnet.py --weights weights/resnet50.h5 --image cat.jpg --layer layer4.2   # a ResNet block

Writes NAME_rules.png: the image and the gradient, deconvnet and guided-backprop maps side by side,
with the raw (signed) reconstructions underneath. Prints, per image, how far deconvnet and guided are
from the gradient, the fraction of ReLU units whose masks [X > 0] and [R > 0] disagree, and the two
exact checks: with the ReLUs removed, and from the first convolution (before any ReLU), all three
rules give the same result bit for bit (the rules differ only in how a ReLU passes the signal back,
so with no ReLU between the input and the unit a reconstruction starts from, they coincide).
"""

from _common import ArgumentParser, check_device, load_classifier, non_negative_int, run
from _images import (add_clip_arg, add_common_args, class_label, clip_percentile, load_inputs,
                     output_dir, resolve_target, save_npy)
from models.network import top1


def parse_args(argv=None):
    p = ArgumentParser(description="Show that a deconvnet reconstruction is the gradient with another "
                                   "ReLU backward rule: gradient, deconvnet and guided maps side by "
                                   "side, with the numbers that compare them.")
    add_common_args(p)
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="reconstruct from this layer's strongest activation (e.g. conv5_3, pool4 on a VGG; "
                        "layer3, layer4.2, layer4.2.conv3 on a ResNet) instead of the class score")
    p.add_argument("--channel", type=non_negative_int, default=None,
                   help="with --layer: only this channel's strongest unit")
    add_clip_arg(p)
    return p.parse_args(argv)


#: Why the exact checks must find no difference, on screen and in the figure.
WHY_IDENTICAL = ("the three rules differ only in how a ReLU passes the signal back, so with no ReLU between the "
                 "input and the unit a reconstruction starts from they coincide and the maps are identical")


def check_name(case):
    """A case of ``deconvnet.equivalence_checks`` in words: 'no ReLUs' or 'from conv1_1'."""
    if case == "no ReLUs":
        return "no ReLUs (the network with every ReLU taken out)"
    return f"{case} (the first layer, before any ReLU)"


def layer_channels(model, layer):
    """The number of channels of ``layer``'s output (None for a vector, such as an fc layer's), from a
    forward pass of one blank image."""
    import numpy as np

    import minigrad as mg
    blank = np.zeros((1, 3, *model.config.input_size), np.float32)
    with mg.no_grad():
        act = model(mg.Tensor(mg.to_device(blank, model.device)), until=layer)
    return act.shape[1] if act.ndim == 4 else None


def main(argv=None):
    args = parse_args(argv)
    clip = clip_percentile(args)
    check_device(args.device)
    from minigrad import relu_rules
    from models import network
    from saliency import deconvnet, render

    model = load_classifier(args.weights, args.device, args.image)
    if args.layer is not None:
        try:
            network.requested(model, args.layer)          # an unknown name: says so, with the table
        except ValueError as e:
            raise ValueError(f"--layer {args.layer}: {e}") from None
    if args.channel is not None and args.layer is None:
        raise ValueError("--channel needs --layer")
    if args.channel is not None:
        channels = layer_channels(model, args.layer)
        if channels is None:
            raise ValueError(f"--channel: layer {args.layer} gives a vector, not channels; leave --channel out")
        if args.channel >= channels:
            raise ValueError(f"--channel {args.channel} is out of range: layer {args.layer} has {channels} "
                             f"channels (0-{channels - 1})")
    target = resolve_target(args.target, model)
    out = output_dir(args.out)
    for item in load_inputs(args.image, model):
        t = int(top1(model, item.x[None])[0]) if target is None else target
        source = f"layer {args.layer}" + (f" channel {args.channel}" if args.channel is not None else "") \
            if args.layer else f"class {class_label(model, t)}"
        r = deconvnet.compare_rules(model, item.x[None], t, layer=args.layer, channel=args.channel)
        checks = deconvnet.equivalence_checks(model, item.x[None], t)
        rules = relu_rules.RULES
        heat = [render.heatmap(r["maps"][k][0], clip) for k in rules]
        signed = [render.signed_map(r["grads"][k][0]) for k in rules]
        caption = (f"from {source}. ||deconvnet - gradient|| / ||gradient|| = "
                   f"{r['relative_difference']['deconvnet']:.3f}, guided: {r['relative_difference']['guided']:.3f}; "
                   f"ReLU masks differ at {r['mask_disagreement']:.1%} of {r['relu_units']} units. "
                   + f"Exact checks ({WHY_IDENTICAL}): "
                   + "; ".join(f"{check_name(case)}: max |difference| {v:g}" for case, v in checks.items())
                   + f". Maps: max over channels of |.|, clipped at the {args.clip_percentile:g}th percentile; "
                     "bottom row: signed, grey = 0")
        picture = render.grid([item.rgb] + heat + [item.rgb] + signed,
                              ["image"] + [f"{k} map" for k in rules] + ["image"] + [f"{k} (signed)" for k in rules],
                              ncols=4, caption=caption)
        tag = f"{item.name}_rules" + (f"_{args.layer}" if args.layer else "")
        render.save_png(out / f"{tag}.png", picture)
        if args.save_npy:
            for k in rules:
                save_npy(out / f"{tag}_{k}.npy", r["grads"][k][0])
        print(f"{item.name}: from {source}")
        print(f"  relative difference to the gradient: deconvnet {r['relative_difference']['deconvnet']:.4f}, "
              f"guided {r['relative_difference']['guided']:.4f}")
        print(f"  ReLU units whose masks differ ([X > 0] vs [R > 0], deconvnet pass): "
              f"{r['mask_disagreement']:.2%} of {r['relu_units']}")
        print(f"  exact checks: {WHY_IDENTICAL}")
        for case, v in checks.items():
            print(f"  {check_name(case)}: all three rules {'identical' if v == 0 else 'DIFFER'} "
                  f"(max |difference| {v:g})")
        print(f"  -> {out / (tag + '.png')}")
    return 0


if __name__ == "__main__":
    run(main)
