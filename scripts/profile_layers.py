#!/usr/bin/env python
"""Where the time goes: each layer's forward and backward, this engine against PyTorch.

    python scripts/profile_layers.py                       # VGG16 forward and saliency, batch 1; shapes training
    python scripts/profile_layers.py --cases saliency --rounds 5
    python scripts/profile_layers.py --json

A layer here is what runs as one step: a convolution with its ReLU (one fused op in the fast tier),
a pooling layer, a fully connected layer with its ReLU and dropout (and the flatten before it). Each
engine runs in a fresh process of its own (as in benchmark.py; the processes alternate over
--rounds), computes the network's activations once, and then times each layer alone on its own
input: its forward (the output computed), and for the saliency and training cases its backward from
a random output gradient. Each figure is the median of --repeats runs after a warm-up, then the
median over rounds. The table also gives the sum of the layers and the whole pass timed in the same
process (the difference is what runs between layers: the graph, the loss, the optimiser's step).

Cases (the same as benchmark.py's):
    forward     VGG16, 224x224, batch --batch, no gradient
    saliency    VGG16, 224x224, batch --batch: forward and input gradient, the weights frozen
    train       the shapes network (64x64, 16-64 channels), batch 64: forward and backward of a
                training step, every weight's gradient; its loss and Adam step are timed as one row
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ArgumentParser, run  # noqa: E402
import _machine  # noqa: E402  (what ran: the CPU, the BLAS kernel)
import _workloads  # noqa: E402  (the networks and cases, as benchmark.py times them)
import benchmark  # noqa: E402  (the shared protocol: threads, medians, alternating fresh processes)

CASES = ("forward", "saliency", "train")
CASE_TITLES = {"forward": "VGG16 forward", "saliency": "VGG16 saliency (forward and input gradient)",
               "train": "shapes training step"}


def parse_args(argv=None):
    p = ArgumentParser(description="Time each layer's forward and backward here and in PyTorch, each "
                                   "engine in its own fresh process, and print where the time goes.")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)} (default all)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both engines (default: MINIGRAD_THREADS or the free cores at the start)")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per engine, alternating (default 3)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each layer per process (default 5)")
    p.add_argument("--batch", type=int, default=1, help="VGG16's batch size (default 1; training: 64)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default), or this process's CPU time: on a busy machine, with --threads 1, "
                        "it counts the work and not the waits for a core (with more threads it counts spinning too)")
    p.add_argument("--no-torch", action="store_true", help="do not run PyTorch even if installed")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--worker", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.case_list = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in args.case_list if c not in CASES]
    if bad or not args.case_list:
        raise ValueError(f"--cases: unknown case {bad[0] if bad else args.cases!r}; use {', '.join(CASES)}")
    for name in ("threads", "rounds", "repeats", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1")
    args.threads_given = args.threads is not None
    return args


def group_layers(layer_names):
    """The layer table cut into steps: [(step name, [layer names])]. A step starts at each conv, pool
    or fc layer (the flatten joins the fc after it); ReLUs and dropouts join the step before them."""
    steps = []
    for name in layer_names:
        starts = name.startswith(("conv", "pool", "flatten")) or (name.startswith("fc") and not (
            steps and steps[-1][1][-1] == "flatten"))
        if starts:
            steps.append((name, [name]))
        else:
            steps[-1][1].append(name)
            if steps[-1][0] == "flatten":
                steps[-1] = (name, steps[-1][1])                       # named after its fc layer
    return steps


# ------------------------------------------------------------------------------------------------ engines
class Ours:
    """This engine's side: layers are the model's modules."""

    def __init__(self, model):
        import minigrad as mg
        self.mg, self.model = mg, model

    def tensor(self, array, requires_grad):
        return self.mg.Tensor(array, requires_grad=requires_grad)

    def run(self, layers, x):
        for name in layers:
            x = getattr(self.model, name)(x)
        return x

    def values(self, t):
        return t.data

    def backward(self, out, g):
        out.backward(g)

    def clear_grads(self, x):
        x.grad = None
        self.model.zero_grad()

    def no_grad(self):
        return self.mg.no_grad()

    def set_trainable(self, flag):
        for p in self.model.parameters():
            p.requires_grad = flag


class Torch:
    """PyTorch's side: the same layers as torch.nn modules, the same weights."""

    def __init__(self, model):
        import torch
        self.torch, self.layers = torch, torch_layers(model)

    def tensor(self, array, requires_grad):
        return self.torch.from_numpy(array).clone().requires_grad_(requires_grad)

    def run(self, layers, x):
        for name in layers:
            x = self.layers[name](x)
        return x

    def values(self, t):
        return t.detach().numpy()

    def backward(self, out, g):
        out.backward(self.torch.from_numpy(g))

    def clear_grads(self, x):
        x.grad = None
        for m in self.layers.values():
            m.zero_grad(set_to_none=True)

    def no_grad(self):
        return self.torch.no_grad()

    def set_trainable(self, flag):
        for m in self.layers.values():
            m.requires_grad_(flag)


def torch_layers(model):
    """{layer name: torch.nn module} for a VGG of ours, with its weights copied (float32, CPU)."""
    import torch

    from minigrad import nn
    from minigrad.backend import to_numpy
    layers = {}
    for name in model.layer_names:
        m = getattr(model, name)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = torch.from_numpy(to_numpy(m.weight.data).copy())
            t = (torch.nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=m.stride, padding=m.padding)
                 if isinstance(m, nn.Conv2d) else torch.nn.Linear(w.shape[1], w.shape[0]))
            with torch.no_grad():
                t.weight.copy_(w)
                t.bias.copy_(torch.from_numpy(to_numpy(m.bias.data)))
        elif isinstance(m, nn.ReLU):
            t = torch.nn.ReLU(inplace=True)                           # as torchvision's VGG
        elif isinstance(m, nn.MaxPool2d):
            t = torch.nn.MaxPool2d(m.kernel_size, m.stride)
        elif isinstance(m, nn.Flatten):
            t = torch.nn.Flatten()
        elif isinstance(m, nn.Dropout):
            t = torch.nn.Dropout(m.p)
        else:
            raise TypeError(f"layer {name}: no PyTorch counterpart for {m!r}")
        layers[name] = t.train(model.training)
    return layers


# ------------------------------------------------------------------------------------------------ worker
#: the clock of the timings: time.perf_counter, or time.process_time with --clock cpu
clock = time.perf_counter


def time_median(fn, repeats, before=lambda: None):
    """Median seconds of fn() over ``repeats`` runs after a warm-up; ``before`` runs untimed before each."""
    times = []
    for k in range(repeats + 1):
        before()
        t = clock()
        fn()
        if k:
            times.append(clock() - t)
    return benchmark.median(times)


def profile(engine, model, x, case, repeats):
    """{"steps": [[step, forward s, backward s or None], ...], "whole": s} for one case."""
    import numpy as np
    steps = group_layers(model.layer_names)
    backward = case != "forward"
    engine.set_trainable(case == "train")
    inputs, a = [], x                                                  # each step's input, from one real pass
    with engine.no_grad():
        for _, layers in steps:
            inputs.append(a)
            a = np.ascontiguousarray(engine.values(engine.run(layers, engine.tensor(a, False))))
    rng = np.random.default_rng(1)
    rows = []
    for k, (name, layers) in enumerate(steps):
        needs_dx = case == "saliency" or k > 0
        box = {}

        def make_input():
            box["x"] = engine.tensor(inputs[k], needs_dx and backward)

        def forward():
            box["out"] = engine.run(layers, box["x"])
        if not backward:
            with engine.no_grad():
                rows.append([name, time_median(forward, repeats, make_input), None])
            continue
        fwd = time_median(forward, repeats, make_input)
        out_shape = engine.values(box["out"]).shape
        g = rng.standard_normal(out_shape).astype(inputs[k].dtype)

        def fresh_graph():
            make_input()
            engine.clear_grads(box["x"])
            forward()
        bwd = time_median(lambda: engine.backward(box["out"], g), repeats, fresh_graph)
        rows.append([name, fwd, bwd])
    return {"steps": rows}


def worker(engine_name, cases, repeats, batch):
    """In a fresh process: profile each case with one engine; {case: {"steps", "whole"}, "info": ...}."""
    import numpy as np
    if engine_name == "torch":
        import torch
        if "OMP_NUM_THREADS" in os.environ:
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from models import vgg
    result = {}
    rng = np.random.default_rng(0)
    for case in cases:
        if case == "train":
            model = vgg.build(_workloads.shapes_config(), seed=0)          # training mode: dropout on
            x = rng.standard_normal((64, 3, 64, 64), dtype=np.float32)
            whole = (_workloads.ours_train_step if engine_name == "ours" else _workloads.torch_train_step)("cpu")
        else:
            model = _workloads.ours_vgg16("cpu")
            x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
            if engine_name == "ours":
                whole = _workloads.ours_cases(model, batch, "cpu")[case]
            else:
                whole = _workloads.torch_cases(_workloads.torch_vgg16("cpu"), batch, "cpu")[case]
        engine = Ours(model) if engine_name == "ours" else Torch(model)
        result[case] = profile(engine, model, x, case, repeats)
        result[case]["whole"] = time_median(whole, repeats)
    result["info"] = _machine.engine_info(engine_name, "cpu")
    return result


def run_worker(engine, args, threads):
    command = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--cases", ",".join(args.case_list),
               "--repeats", str(args.repeats), "--batch", str(args.batch), "--threads", str(threads),
               "--clock", args.clock]
    r = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        raise RuntimeError(f"the {engine} process failed: {lines[-1] if lines else f'exit {r.returncode}'}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ table
def combine(per_round, case):
    """Median over rounds of each step's forward and backward, and of the whole pass."""
    med = benchmark.median
    first = per_round[0][case]["steps"]
    steps = []
    for k, (name, _, bwd) in enumerate(first):
        f = med([r[case]["steps"][k][1] for r in per_round])
        b = med([r[case]["steps"][k][2] for r in per_round]) if bwd is not None else None
        steps.append({"layer": name, "forward_s": f, "backward_s": b})
    return {"steps": steps, "whole_s": med([r[case]["whole"] for r in per_round])}


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "—"


def ms(t):
    return f"{t * 1e3:.1f}" if t is not None else "—"


def table(case, ours, torch):
    """The markdown table of one case: per layer, ours and PyTorch's milliseconds and their ratio."""
    backward = ours["steps"][0]["backward_s"] is not None
    head = ["layer", "ours fwd", "PyTorch fwd", "ratio"]
    if backward:
        head += ["ours bwd", "PyTorch bwd", "ratio", "ours total", "PyTorch total", "ratio"]
    head.append("share of ours")
    total = lambda s: s["forward_s"] + (s["backward_s"] or 0)          # noqa: E731
    ours_sum = sum(total(s) for s in ours["steps"])
    lines = [f"{CASE_TITLES[case]} (ms per call)", "| " + " | ".join(head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]

    def add(cells):
        lines.append("| " + " | ".join(cells) + " |")
    tsteps = torch["steps"] if torch else [None] * len(ours["steps"])
    for s, t in zip(ours["steps"], tsteps):
        row = [s["layer"], ms(s["forward_s"]), ms(t and t["forward_s"]), ratio(s["forward_s"], t and t["forward_s"])]
        if backward:
            row += [ms(s["backward_s"]), ms(t and t["backward_s"]), ratio(s["backward_s"], t and t["backward_s"]),
                    ms(total(s)), ms(t and total(t)), ratio(total(s), t and total(t))]
        add(row + [f"{total(s) / ours_sum:.0%}"])
    blank = [""] * (len(head) - 5)                                     # the totals go in the last three columns
    torch_sum = sum(total(t) for t in torch["steps"]) if torch else None
    add(["sum of layers", *blank, ms(ours_sum), ms(torch_sum), ratio(ours_sum, torch_sum), ""])
    w_ours, w_torch = ours["whole_s"], (torch["whole_s"] if torch else None)
    add(["whole pass" + (" (with loss and Adam step)" if case == "train" else ""), *blank,
         ms(w_ours), ms(w_torch), ratio(w_ours, w_torch), ""])
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.threads is None:
        from minigrad.tiers import default_threads
        args.threads = default_threads()
    benchmark.thread_environment(args.threads)
    if args.worker:
        global clock
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        print(json.dumps(worker(args.worker, args.case_list, args.repeats, args.batch)))
        return 0
    import importlib.util
    engines = ["ours"] + ([] if args.no_torch or importlib.util.find_spec("torch") is None else ["torch"])
    from tqdm import tqdm
    with tqdm(total=args.rounds * len(engines), desc="profile", unit="process", file=sys.stderr) as progress:
        def run_engine(engine):
            result = run_worker(engine, args, args.threads)
            progress.update(1)
            return result
        results = benchmark.alternate(run_engine, engines, args.rounds)
    out = {"threads": args.threads, "clock": args.clock, "rounds": args.rounds, "repeats": args.repeats,
           "batch": args.batch,
           "info": {e: results[e][-1]["info"] for e in engines},
           "cases": {case: {e: combine(results[e], case) for e in engines} for case in args.case_list}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    info = out["info"]
    print(f"{args.threads} threads; {args.clock} time; each engine in its own process, {args.rounds} rounds of "
          f"{args.repeats} repeats, medians; VGG16 batch {args.batch}, training batch 64")
    print(f"ours: {info['ours']['blas']}; {info['ours']['threads']} threads of its own, the BLAS on "
          f"{info['ours']['blas_threads']}, Numba on {info['ours']['numba_threads']}")
    if "torch" in info:
        print(f"PyTorch: {info['torch']['library']}, {info['torch']['blas']}")
    for note in _machine.kernel_notes(info["ours"].get("blas_info"), _machine.cpu_model()[1], os.environ):
        print(f"note: {note}")
    for case, sides in out["cases"].items():
        print()
        print(table(case, sides["ours"], sides.get("torch")))
    return 0


if __name__ == "__main__":
    run(main)
