#!/usr/bin/env python
"""Speed and memory of this engine against PyTorch, each engine timed in its own fresh process.

    python scripts/benchmark.py                  # the full table (PyTorch too, when installed)
    python scripts/benchmark.py --json           # the same figures as JSON
    python scripts/benchmark.py --quick          # 2 rounds of 2 repeats, batch 1, no memory probe
    python scripts/benchmark.py --competing      # also the cases with a competing process busy on a core
    python scripts/benchmark.py --resnet50       # also ResNet-50's forward and saliency, batch 1
    python scripts/benchmark.py --only-resnet50  # only those

The protocol. A user runs one engine, not both: two engines in one process keep two sets of thread
pools that spin or wait between calls and slow each other. So each engine runs in a fresh process
of its own, and the processes alternate over --rounds rounds (ours then PyTorch's, then PyTorch's
then ours, ...), so that a slow spell of a shared machine falls on both alike. Each process builds
VGG16 with the same random weights (224x224), and for each case runs it once to warm up
(compilation, allocation), then --repeats times, and reports the median of those; the table gives,
per case, the median over the rounds. Cases: VGG16 forward, saliency (forward, input gradient and
map) at each --batches size, one class-model step at batch 1, and one training step of the shapes
network at batch 64; with --resnet50 (or --only-resnet50), ResNet-50 (torchvision's layout, random
weights) forward and saliency at batch 1, against torchvision's ResNet-50 (or the same layout
from models/torch_reference.py when torchvision is not installed) with the same weights and BN statistics. With
--competing, the VGG16 class-model step again, in rounds of their own,
while a third process (a busy Python loop, at the same priority) keeps one core busy: what a user of
a laptop or of a shared server sees. Then peak resident memory of a VGG16 saliency run, ours and
PyTorch's, each in a fresh process. Both engines get the same --threads.

Each side's report names its BLAS library, the kernel it chose for this CPU and its thread count
(threadpoolctl for ours; torch.__config__ for PyTorch's), and the CPU's model. A variable such as
OPENBLAS_CORETYPE forces an older kernel than the CPU has; the report says so, since a user's
machine does not set it (run such a machine's benchmark as `env -u OPENBLAS_CORETYPE ... python ...`).
"""
import argparse
import json
import os
import subprocess
import sys
import time

from _common import ArgumentParser, check_device, run
from _machine import cpu_model, engine_info, kernel_notes, machine_cpu_seconds, own_cpu_seconds
from _workloads import ours_cases, ours_resnet50, ours_train_step, ours_vgg16, torch_cases, torch_resnet50, \
    torch_train_step, torch_vgg16

#: (key, label) of each case a worker process can time, in the table's order
CASE_LABELS = {"forward": "VGG16 forward", "saliency": "VGG16 saliency", "class-model": "VGG16 class-model step",
               "train": "shapes training step",
               "resnet50-forward": "ResNet-50 forward", "resnet50-saliency": "ResNet-50 saliency"}
#: the ResNet-50 cases (at batch 1, 224x224): their own network in each worker, torchvision's layout
RESNET50_CASES = ("resnet50-forward", "resnet50-saliency")


def parse_args(argv=None):
    p = ArgumentParser(description="Time VGG16 forward, saliency and class-model steps, and a shapes "
                                   "training step, here and in PyTorch, each engine in its own "
                                   "fresh process; print the ratios.")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both engines (default: as every script, MINIGRAD_THREADS or the cores "
                        "no other process keeps busy at the start)")
    p.add_argument("--rounds", type=int, default=5, help="fresh processes per engine, alternating (default 5)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case in each process, after a "
                                                          "warm-up (default 3)")
    p.add_argument("--batches", default="1,8", help="VGG16 batch sizes (default 1,8)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="cpu, or gpu against torch on CUDA")
    p.add_argument("--quick", action="store_true", help="2 rounds of 2 repeats, batch 1, no memory probe")
    p.add_argument("--competing", action="store_true",
                   help="also time the class-model step with another process busy on one core")
    p.add_argument("--resnet50", action="store_true",
                   help="also time ResNet-50's forward and saliency at batch 1 (after the VGG16 cases)")
    p.add_argument("--only-resnet50", action="store_true",
                   help="time only ResNet-50's forward and saliency at batch 1")
    p.add_argument("--no-torch", action="store_true", help="do not run PyTorch even if installed")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--worker", choices=("ours", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--cases", help=argparse.SUPPRESS)                 # the worker's: key/batch,...
    p.add_argument("--memory-probe", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("threads", "rounds", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1")
    try:
        args.batch_sizes = [int(b) for b in args.batches.split(",")]
    except ValueError:
        raise ValueError(f"--batches must be whole numbers separated by commas, not {args.batches!r}") from None
    if min(args.batch_sizes) < 1:
        raise ValueError("--batches must be at least 1")
    args.threads_given = args.threads is not None
    if args.quick:
        args.rounds, args.repeats, args.batch_sizes = 2, 2, [1]
    if args.only_resnet50:
        args.no_memory = True                          # the memory probe is VGG16's
    return args


#: what thread_environment sets: OpenBLAS, Numba and OpenMP read these once; the scripts' own choice of
#: threads (minigrad.tiers.default_threads) reads MINIGRAD_THREADS
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_THREADS")


def thread_environment(n):
    """Threads for this process (before NumPy or PyTorch is imported) and the workers it starts."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)


def case_key(name, batch):
    return f"{name}/{batch}"


def case_label(key, competing=False):
    name, batch = key.split("/")
    return f"{CASE_LABELS[name]}, batch {batch}" + (", one core busy" if competing else "")


def resnet50_cases():
    """The case keys of ResNet-50 (forward, saliency; batch 1), after the VGG16 ones in the table."""
    return [case_key(n, 1) for n in RESNET50_CASES]


def plan_cases(batch_sizes):
    """The case keys of the main table: forward and saliency per batch size, the class-model step at
    batch 1, the training step at batch 64."""
    keys = [case_key(n, b) for b in batch_sizes for n in ("forward", "saliency")]
    return keys + [case_key("class-model", 1), case_key("train", 64)]


# ------------------------------------------------------------------------------------------------ timing
def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def time_case(fn, repeats, sync):
    """The median time of ``fn`` over ``repeats`` runs, after one untimed warm-up (compilation, allocation)."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return median(times)


def alternate(run_engine, engines, rounds):
    """Call ``run_engine(engine)`` for each engine in each round, the order alternating (a b, b a, a b,
    ...), each call a fresh process; returns {engine: [its result per round]}."""
    results = {e: [] for e in engines}
    for r in range(rounds):
        for engine in (engines if r % 2 == 0 else engines[::-1]):
            results[engine].append(run_engine(engine))
    return results


def combine(per_round):
    """Per case, the median over rounds of each round's median time: {case: seconds}."""
    return {key: median([times[key] for times in per_round]) for key in per_round[0]}


# ------------------------------------------------------------------------------------------------ worker
def worker(engine, keys, repeats, device):
    """In a fresh process: time each case (``keys``: name/batch) of one engine; {"times", "info"}."""
    sync = lambda: None  # noqa: E731
    if engine == "torch":
        import torch
        if "OMP_NUM_THREADS" in os.environ:                   # else PyTorch's own default
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        if device == "gpu":
            sync = torch.cuda.synchronize
            torch.backends.cuda.matmul.allow_tf32 = False      # strict float32 GEMMs and convolutions,
            torch.backends.cudnn.allow_tf32 = False            # as CuPy's (TF32 only with CUPY_TF32=1)
        make_net, make_cases, make_train = torch_vgg16, torch_cases, torch_train_step
        make_resnet = torch_resnet50
    else:
        if device == "gpu":
            import cupy
            sync = cupy.cuda.Device().synchronize
        make_net, make_cases, make_train = ours_vgg16, ours_cases, ours_train_step
        make_resnet = lambda device: (ours_resnet50(device), "models.resnet")  # noqa: E731
    times, extra = {}, {}
    resnet_keys = [k for k in keys if k.split("/")[0] in RESNET50_CASES]
    vgg_keys = [k for k in keys if not k.startswith("train/") and k not in resnet_keys]
    if vgg_keys:
        net = make_net(device)
        for key in vgg_keys:
            name, batch = key.split("/")
            times[key] = time_case(make_cases(net, int(batch), device)[name], repeats, sync)
        del net
    if case_key("train", 64) in keys:
        times[case_key("train", 64)] = time_case(make_train(device), repeats, sync)
    if resnet_keys:                                   # the same closures as VGG16's, on ResNet-50
        net, extra["resnet50"] = make_resnet(device)
        for key in resnet_keys:
            name, batch = key.split("/")
            times[key] = time_case(make_cases(net, int(batch), device)[name.split("-", 1)[1]], repeats, sync)
        del net
    return {"times": times, "info": dict(engine_info(engine, device), **extra)}


def run_worker(engine, keys, args, threads, competing=False):
    """One fresh process of ``engine`` timing ``keys``; with ``competing``, a busy loop runs beside it.
    ``threads`` None: each engine chooses its own (ours: the scripts' choice; PyTorch: its default)."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--cases", ",".join(keys),
               "--repeats", str(args.repeats), "--device", args.device]
    env = dict(os.environ)
    if threads is None:
        for var in THREAD_VARIABLES:
            env.pop(var, None)
    else:
        command += ["--threads", str(threads)]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing else None
    try:
        r = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        raise RuntimeError(f"the {engine} process failed: {lines[-1] if lines else f'exit {r.returncode}'}")
    return json.loads(r.stdout.strip().splitlines()[-1])


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
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe", engine, "--threads", str(threads)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"memory probe ({engine}) failed: {r.stderr.strip().splitlines()[-1:]}")
    return float(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ main
def measure(args, threads, have_torch, progress):
    """The main table's and the competing cases' times: {"rows": [...], "info": {engine: info}}."""
    engines = ["ours", "torch"] if have_torch else ["ours"]
    main_keys = (([] if args.only_resnet50 else plan_cases(args.batch_sizes))
                 + (resnet50_cases() if args.resnet50 or args.only_resnet50 else []))
    groups = [(main_keys, False, threads)]
    if args.competing:                 # unless --threads is given, each engine chooses as a user's run would
        groups.append(([case_key("class-model", 1)], True, threads if args.threads_given else None))
    rows, info = [], {}
    for keys, competing, group_threads in groups:
        def run_engine(engine):
            result = run_worker(engine, keys, args, group_threads, competing)
            progress.update(1)
            return result
        results = alternate(run_engine, engines, args.rounds)
        medians = {e: combine([r["times"] for r in results[e]]) for e in engines}
        if not competing:
            info.update({e: results[e][-1]["info"] for e in engines})
        for key in keys:
            ours_t, torch_t = medians["ours"][key], medians.get("torch", {}).get(key)
            batch = int(key.split("/")[1])
            rows.append({"case": case_label(key, competing), "batch": batch, "ours_s": ours_t, "torch_s": torch_t,
                         "ratio": ours_t / torch_t if torch_t else None, "ours_per_image_s": ours_t / batch,
                         "torch_per_image_s": torch_t / batch if torch_t else None,
                         "competing_process": competing,
                         "threads": {e: results[e][-1]["info"]["threads"] for e in engines},
                         "ours_rounds_s": [r["times"][key] for r in results["ours"]],
                         "torch_rounds_s": [r["times"][key] for r in results["torch"]] if have_torch else None})
    return {"rows": rows, "info": info}


def print_table(result):
    info, rows = result["info"], result["rows"]
    print(f"CPU: {result['cpu']}; device {result['device']}, {result['threads']} threads; each engine in its own "
          f"process, {result['rounds']} rounds of {result['repeats']} repeats, medians")
    print(f"ours: {info['ours']['blas']}; {info['ours']['threads']} threads of its own, the BLAS on "
          f"{info['ours']['blas_threads']}, Numba on {info['ours']['numba_threads']} "
          f"({info['ours']['numba_threading_layer']})")
    print(f"PyTorch: {info['torch']['library']}, {info['torch']['blas']}, {info['torch']['threads']} threads"
          if "torch" in info else "PyTorch: not run")
    if "resnet50" in info.get("torch", {}):
        print(f"PyTorch's ResNet-50: {info['torch']['resnet50']}")
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"| {'case':<48} | ours (ms) | PyTorch (ms) | ours / PyTorch | ours per image (ms) "
          f"| PyTorch per image (ms) |")
    print(f"|{'-' * 50}|-----------|--------------|----------------|---------------------|------------------------|")
    for r in rows:
        t = f"{r['torch_s'] * 1e3:12.1f}" if r["torch_s"] else f"{'—':>12}"
        ratio = f"{r['ratio']:14.2f}" if r["ratio"] else f"{'—':>14}"
        t_image = f"{r['torch_per_image_s'] * 1e3:22.1f}" if r["torch_per_image_s"] else f"{'—':>22}"
        print(f"| {r['case']:<48} | {r['ours_s'] * 1e3:9.1f} | {t} | {ratio} | {r['ours_per_image_s'] * 1e3:19.1f} "
              f"| {t_image} |")
    for case in ("forward", "saliency"):
        for engine, name in (("ours", "ours"), ("torch", "PyTorch")):
            per_image = {r["batch"]: r[f"{engine}_per_image_s"] for r in rows if r[f"{engine}_per_image_s"]
                         and r["case"].startswith(f"VGG16 {case}") and not r["competing_process"]}
            if 1 in per_image and len(per_image) > 1:
                print(f"{name}, VGG16 {case} per image against batch 1: " + ", ".join(
                    f"batch {b} {t / per_image[1]:.2f}" for b, t in per_image.items() if b != 1))
    memory = result["peak_memory_vgg16_saliency"]
    if memory:
        line = f"peak memory of a VGG16 saliency run (fresh process): ours {memory['ours_mb']:.0f} MB"
        if "torch_mb" in memory:
            line += f", PyTorch {memory['torch_mb']:.0f} MB"
        print(line)


def main(argv=None):
    args = parse_args(argv)
    if args.threads is None:
        from minigrad.tiers import default_threads
        args.threads = default_threads()
    threads = args.threads
    if not (args.worker and not args.threads_given):     # a worker told no count keeps its engine's choice
        thread_environment(threads)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, args.cases.split(","), args.repeats, args.device)))
        return 0
    check_device(args.device)
    have_torch = False
    if not args.no_torch:
        import importlib.util
        have_torch = importlib.util.find_spec("torch") is not None
        if have_torch and args.device == "gpu":
            have_torch = subprocess.run([sys.executable, "-c", "import torch, sys; sys.exit(not torch.cuda.is_available())"],
                                        capture_output=True).returncode == 0
    from tqdm import tqdm
    start = (time.perf_counter(), machine_cpu_seconds(), own_cpu_seconds())
    n_processes = args.rounds * (2 if have_torch else 1) * (2 if args.competing else 1)
    with tqdm(total=n_processes, desc="benchmark", unit="process", file=sys.stderr) as progress:
        result = measure(args, threads, have_torch, progress)
    wall, machine, own = (now - then if then is not None else None for now, then in
                          zip((time.perf_counter(), machine_cpu_seconds(), own_cpu_seconds()), start))
    others = max(0.0, (machine - own) / wall) if machine is not None else None
    memory = {}
    if not (args.quick or args.no_memory) and args.device == "cpu":
        memory["ours_mb"] = probe("ours", threads)
        if have_torch:
            memory["torch_mb"] = probe("torch", threads)
    model, flags = cpu_model()
    notes = kernel_notes(result["info"]["ours"].get("blas_info"), flags, os.environ)
    if others is not None and others > 0.1:
        notes.append(f"the machine was busy: while the engines were timed, other processes used {others:.1f} "
                     f"of its {os.cpu_count()} cores on average")
    result.update({"device": args.device, "threads": threads, "rounds": args.rounds, "repeats": args.repeats,
                   "cpu": model, "other_processes_cores": others, "notes": notes, "peak_memory_vgg16_saliency": memory})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    run(main)
