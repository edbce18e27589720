#!/usr/bin/env python
"""Speed and memory of this engine against PyTorch, measured side by side in one run.

    python scripts/benchmark.py                  # the full table (PyTorch too, when installed)
    python scripts/benchmark.py --json           # the same figures as JSON
    python scripts/benchmark.py --quick          # fewer repeats, batch 1 only

Times (medians of --repeats runs after a warm-up, the two engines timed in alternating turns, on
the same number of threads, in one process whose allocator keeps freed memory, as every script's
does: _common.keep_freed_memory):
VGG16 with random weights at 224x224, batch 1 and 8: forward; saliency (forward, input gradient
and map); one class-model step. One training step of the shapes network at batch 64. Then peak
resident memory of a VGG16 saliency run, ours and PyTorch's, each in a fresh process.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Time VGG16 forward, saliency and class-model steps, and a "
                                            "shapes training step, here and in PyTorch; print the ratios.")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both engines (default: all)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure, after a warm-up (default 5)")
    p.add_argument("--batches", default="1,8", help="VGG16 batch sizes (default 1,8)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="cpu, or gpu against torch on CUDA")
    p.add_argument("--quick", action="store_true", help="3 repeats, batch 1, no memory probe")
    p.add_argument("--no-torch", action="store_true", help="do not run PyTorch even if installed")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--memory-probe", choices=("ours", "torch"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def set_threads(n):
    """Before NumPy is imported: OpenBLAS and Numba read these once."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


def median_times(fns, repeats, syncs):
    """The median time of each function, timed in turns after one warm-up each (compilation,
    allocation). The turns alternate their order (a b, b a, a b, ...), so that a slow spell of the
    machine falls on both engines alike and neither always runs right after the other."""
    for fn, sync in zip(fns, syncs):
        fn()
        sync()
    times = [[] for _ in fns]
    for turn in range(repeats):
        order = range(len(fns)) if turn % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            t = time.perf_counter()
            fns[k]()
            syncs[k]()
            times[k].append(time.perf_counter() - t)
    return [sorted(ts)[len(ts) // 2] for ts in times]


def ours_and_torch(ours_fn, torch_fn, repeats, syncs):
    """(our median, PyTorch's median or None when torch_fn is None)."""
    if torch_fn is None:
        return median_times([ours_fn], repeats, syncs[:1])[0], None
    return tuple(median_times([ours_fn, torch_fn], repeats, syncs))


# ------------------------------------------------------------------------------------------------ ours
def ours_vgg16(device):
    from models import vgg
    model = vgg.build("vgg16", seed=0).eval()
    return model.to(device) if device != "cpu" else model


def ours_cases(model, batch, device):
    import numpy as np

    import minigrad as mg
    import saliency
    from saliency.class_model import PRESETS
    PAPER = PRESETS["paper"]                        # plain SGD on the pixels, as the PyTorch side does
    x = mg.to_device(np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32), device)
    targets = list(range(batch))

    def forward():
        with mg.no_grad():
            model(mg.Tensor(x))

    def saliency_run():
        saliency.saliency_map(saliency.input_gradient(model, x, targets))

    def class_model_step():
        saliency.class_model(model, 0, **dict(PAPER, steps=1)) if batch == 1 else saliency_run()

    return {"forward": forward, "saliency": saliency_run, "class-model step": class_model_step}


def ours_train_step(device):
    import numpy as np

    import minigrad as mg
    from minigrad import functional as F
    from models import vgg
    cfg = vgg.VGGConfig("shapes_vgg", [[16, 16], [32, 32], [64, 64]], fc=[128], num_classes=10,
                        input_size=(64, 64), dropout=0.3)
    model = vgg.build(cfg, seed=0).to(device) if device != "cpu" else vgg.build(cfg, seed=0)
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = mg.to_device(rng.standard_normal((64, 3, 64, 64), dtype=np.float32), device)
    y = mg.to_device(rng.integers(0, 10, 64), device)

    def step():
        loss = F.cross_entropy(model(mg.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# ------------------------------------------------------------------------------------------------ torch
def torch_vgg16(ours, device):
    """torchvision's VGG16 layout, with our model's weights copied in."""
    import torch

    from minigrad.backend import to_numpy
    layers, c = [], 3
    for block in ours.config.blocks:
        for width in block:
            layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = width
        layers.append(torch.nn.MaxPool2d(2, 2))
    head = [torch.nn.Flatten(), torch.nn.Linear(512 * 7 * 7, 4096), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(4096, 1000)]
    net = torch.nn.Sequential(*layers, *head)
    mods = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for m, name in zip(mods, ours.weight_layers):
            layer = getattr(ours, name)
            m.weight.copy_(torch.from_numpy(to_numpy(layer.weight.data)))
            m.bias.copy_(torch.from_numpy(to_numpy(layer.bias.data)))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to("cuda" if device == "gpu" else "cpu")


def torch_cases(net, batch, device):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    x = torch.randn(batch, 3, 224, 224, device=dev)
    targets = torch.arange(batch, device=dev)

    def forward():
        with torch.no_grad():
            net(x)

    def saliency_run():
        xi = x.clone().requires_grad_(True)
        net(xi)[torch.arange(batch), targets].sum().backward()
        xi.grad.abs().amax(dim=1)

    def class_model_step():
        if batch != 1:
            return saliency_run()
        img = torch.zeros(1, 3, 224, 224, device=dev, requires_grad=True)
        net(img)[0, 0].backward()
        with torch.no_grad():
            img += 1.0 * (img.grad - 2e-3 * img)

    return {"forward": forward, "saliency": saliency_run, "class-model step": class_model_step}


def torch_train_step(device):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    torch.manual_seed(0)
    layers, c = [], 3
    for block in [[16, 16], [32, 32], [64, 64]]:
        for width in block:
            layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU()]
            c = width
        layers.append(torch.nn.MaxPool2d(2))
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 128), torch.nn.ReLU(),
                              torch.nn.Dropout(0.3), torch.nn.Linear(128, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(64, 3, 64, 64, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# ------------------------------------------------------------------------------------------------ memory
def peak_rss_mb():
    """This process's peak resident memory. /proc's VmHWM belongs to the process image, so it starts
    afresh at exec; getrusage's ru_maxrss would also count the parent's memory copied at fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(engine):
    """Peak RSS (MB) of loading VGG16 and computing one batch-1 saliency map, in this fresh process."""
    if engine == "ours":
        import numpy as np

        import saliency
        model = ours_vgg16("cpu")
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
        saliency.saliency_map(saliency.input_gradient(model, x, 0))
    else:
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        layers, c = [], 3
        for block in [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3]:
            for width in block:
                layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU(True)]
                c = width
            layers.append(torch.nn.MaxPool2d(2))
        net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(25088, 4096), torch.nn.ReLU(True),
                                  torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Linear(4096, 1000)).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        x = torch.randn(1, 3, 224, 224, requires_grad=True)
        net(x)[0, 0].backward()
        x.grad.abs().amax(dim=1)
    print(peak_rss_mb())


def probe(engine, threads):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe", engine, "--threads", str(threads)],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"memory probe ({engine}) failed: {r.stderr.strip().splitlines()[-1:]}")
    return float(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ main
def main(argv=None):
    args = parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        raise ValueError("--threads and --repeats must be at least 1")
    set_threads(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import check_device
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return 0
    check_device(args.device)
    batches = [1] if args.quick else [int(b) for b in args.batches.split(",")]
    repeats = 3 if args.quick else args.repeats
    have_torch = False
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            have_torch = args.device == "cpu" or torch.cuda.is_available()
        except ImportError:
            pass
    sync_ours = sync_torch = lambda: None
    if args.device == "gpu":
        import cupy
        sync_ours = cupy.cuda.Device().synchronize
        if have_torch:
            sync_torch = torch.cuda.synchronize
            torch.backends.cuda.matmul.allow_tf32 = False      # strict float32 GEMMs and convolutions,
            torch.backends.cudnn.allow_tf32 = False            # as CuPy's (TF32 only with CUPY_TF32=1)

    import numpy as np
    from tqdm import tqdm
    rows = []
    ours = ours_vgg16(args.device)
    net = torch_vgg16(ours, args.device) if have_torch else None
    jobs = [(f"VGG16 {name}, batch {b}", b, name) for b in batches for name in ("forward", "saliency", "class-model step")
            if not (name == "class-model step" and b != 1)]
    for label, b, name in tqdm(jobs, desc="benchmark", unit="case", file=sys.stderr):
        ours_t, torch_t = ours_and_torch(ours_cases(ours, b, args.device)[name],
                                         torch_cases(net, b, args.device)[name] if have_torch else None,
                                         repeats, [sync_ours, sync_torch])
        rows.append({"case": label, "batch": b, "ours_s": ours_t, "torch_s": torch_t})
    del ours, net
    ours_t, torch_t = ours_and_torch(ours_train_step(args.device),
                                     torch_train_step(args.device) if have_torch else None,
                                     repeats, [sync_ours, sync_torch])
    rows.append({"case": "shapes training step, batch 64", "batch": 64, "ours_s": ours_t, "torch_s": torch_t})
    for r in rows:
        r["ratio"] = r["ours_s"] / r["torch_s"] if r["torch_s"] else None
        r["ours_per_image_s"] = r["ours_s"] / r["batch"]
    memory = {}
    if not (args.quick or args.no_memory) and args.device == "cpu":
        memory["ours_mb"] = probe("ours", args.threads)
        if have_torch:
            memory["torch_mb"] = probe("torch", args.threads)
    import platform
    result = {"device": args.device, "threads": args.threads, "repeats": repeats, "machine": platform.processor()
              or platform.machine(), "numpy": np.__version__, "torch": torch.__version__ if have_torch else None,
              "rows": rows, "peak_memory_vgg16_saliency": memory}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"device {args.device}, {args.threads} threads, median of {repeats}"
          + (f", PyTorch {torch.__version__}" if have_torch else ", PyTorch not installed"))
    print(f"| {'case':<34} | ours (ms) | PyTorch (ms) | ours / PyTorch |")
    print(f"|{'-' * 36}|-----------|--------------|----------------|")
    for r in rows:
        t = f"{r['torch_s'] * 1e3:12.1f}" if r["torch_s"] else f"{'—':>12}"
        ratio = f"{r['ratio']:14.2f}" if r["ratio"] else f"{'—':>14}"
        print(f"| {r['case']:<34} | {r['ours_s'] * 1e3:9.1f} | {t} | {ratio} |")
    if memory:
        line = f"peak memory of a VGG16 saliency run (fresh process): ours {memory['ours_mb']:.0f} MB"
        if "torch_mb" in memory:
            line += f", PyTorch {memory['torch_mb']:.0f} MB"
        print(line)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import run
    run(main)
