"""Helpers shared by the command-line scripts: the default weights, --device, and error handling.

    from _common import DEFAULT_WEIGHTS, ArgumentParser, add_device_arg, add_weights_arg, run

    def main(argv=None):
        parser = ArgumentParser(description=...)
        add_weights_arg(parser); add_device_arg(parser)
        args = parser.parse_args(argv)
        ...

    if __name__ == "__main__":
        run(main)

``run`` turns bad input (ValueError and its kin: WeightsError, ImageError, ClassLookupError;
OSError; an unusable GPU) into one line on stderr and exit code 2, never a traceback. Set
DEEPINSIDE_DEBUG=1 to see the traceback anyway. A bad ``MINIGRAD_OPS`` is refused the same way when
this module is imported (``check_ops_variable``), and an output folder that a run made and left
empty (an early error, a Ctrl-C) is removed when it ends (``remove_empty_new_folders``).
"""
import argparse
import ctypes
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = PROJECT_ROOT / "weights" / "shapes_vgg.h5"
SHAPES_RESNET = PROJECT_ROOT / "weights" / "shapes_resnet.h5"       # the shipped ResNet (the demo shows both)

if str(PROJECT_ROOT) not in sys.path:           # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(PROJECT_ROOT))

OPS_TIERS = ("simple", "fast")          # minigrad.tiers.TIERS, spelled out so that the check imports nothing


def check_ops_variable(environ=None):
    """Exit 2 with one line when MINIGRAD_OPS names no tier of minigrad. minigrad reads the variable
    when it is first imported, which most scripts do at their top, before ``run`` could turn the error
    into a line; so the check runs when this module (every script's first import) is loaded."""
    value = (os.environ if environ is None else environ).get("MINIGRAD_OPS")
    if value is not None and value not in OPS_TIERS:
        print(f"{Path(sys.argv[0]).name}: error: MINIGRAD_OPS: unknown ops tier {value!r}; choose one of "
              f"{', '.join(OPS_TIERS)}", file=sys.stderr)
        sys.exit(2)


check_ops_variable()


class CLIError(Exception):
    """A user-facing error: its message is printed as is."""


def add_weights_arg(parser):
    parser.add_argument("--weights", metavar="FILE.h5", default=str(DEFAULT_WEIGHTS),
                        help="network weights in the project's HDF5 format (a Keras .h5 or torchvision "
                             ".pth is converted on the fly); default: the shipped demo model "
                             f"{DEFAULT_WEIGHTS.relative_to(PROJECT_ROOT)}")


def add_device_arg(parser):
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where to run: cpu (NumPy + Numba) or gpu (CuPy + numba.cuda); default cpu")


def finite_float(text):
    """argparse type of every number option: a float that is finite (float() takes 'nan' and 'inf')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def non_negative_int(text):
    """argparse type of a seed or a count that may be 0: a whole number >= 0 (the error names the option)."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {value}")
    return value


def positive_int(text):
    """argparse type of a count that must be at least 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text):
    """argparse type of a weight or a scale that may be 0: a finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


#: The highest missing folder on the way to each output folder (or output file's folder) named on the
#: command line: what this run creates. ``remove_empty_new_folders`` removes those it leaves empty.
_new_folders = []


def _note_new_folder(folder):
    path = Path(os.path.abspath(folder))
    if path.exists():
        return
    while not path.parent.exists():
        path = path.parent
    if path not in _new_folders:
        _new_folders.append(path)


def remove_empty_new_folders():
    """Remove the output folders that this run created and left without a file (after an early error
    or a Ctrl-C), with their empty subfolders; a folder that existed before the run stays, and so does
    any folder holding a file. ``run`` calls it when the script ends."""
    for top in reversed(_new_folders):
        if not top.is_dir() or top.is_symlink():
            continue
        for dirpath, _, _ in os.walk(top, topdown=False):     # deepest first; rmdir fails on a non-empty one
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    _new_folders.clear()


def _cannot_write(folder):
    """None when files can be made in ``folder`` (or, if it is missing, the folders to it can be
    made), else the reason. Tried for real (a temporary file), since permission bits do not tell
    about read-only file systems, or about root."""
    target = probe = Path(os.path.abspath(folder))
    while not probe.exists():                              # the nearest folder that exists
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        return reason if probe == target else f"{probe}: {reason}"
    return None


def output_folder(text):
    """argparse type of an output folder (--out DIR): refused at once, before any work, when it is a
    file or cannot be written to; the folder is made later, when the first file is written (and removed
    at the end if the run leaves it empty: ``remove_empty_new_folders``)."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    reason = _cannot_write(text)
    if reason:
        raise argparse.ArgumentTypeError(f"cannot write to the folder {text}: {reason}")
    _note_new_folder(text)
    return text


def output_file(text):
    """argparse type of an output file (--out FILE): refused at once when it is a folder or its
    folder cannot be written to."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write")
    folder = os.path.dirname(text) or "."
    reason = _cannot_write(folder)
    if reason:
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder}: {reason}")
    _note_new_folder(folder)
    return text


def add_overwrite_arg(parser):
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files an earlier run of this script left in --out (only those: "
                             "other files there stay); without it such a folder is refused")


def claim_outputs(out, patterns, overwrite, hint="", keep=(), remove=True):
    """Make sure no earlier run's outputs are left in the folder ``out`` to mix with this run's.

    ``patterns``: globs, relative to ``out``, of every file the script writes there (``"summary.png"``,
    ``"images/shapes_*.png"``); ``keep``: globs of files that those match but that belong to another
    run kind (another preset's files). Such files are refused with a CLIError naming a few of them and
    their count (``hint``, such as ", --resume to continue it", is added to the advice), unless
    ``overwrite``: then they, and nothing else in the folder, are removed (with ``remove=False`` they are
    returned instead, for ``remove_files`` once a later check has let the run go ahead). A folder that
    does not exist yet holds nothing. Call it before the work starts."""
    out = Path(out)

    def matching(globs):
        return {p for pattern in globs for p in out.glob(pattern) if p.is_file() or p.is_symlink()}
    found = sorted(matching(patterns) - matching(keep))
    if found and not overwrite:
        names = [str(p.relative_to(out)) for p in found]
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise CLIError(f"--out {out} holds files of an earlier run ({shown}: {len(names)} file"
                       f"{'s' * (len(names) != 1)}): pass --overwrite to replace them{hint}, or choose "
                       "another --out")
    if not remove:
        return found
    remove_files(found)
    return []


def remove_files(paths):
    """Remove the files ``claim_outputs`` found (an earlier run's, with --overwrite)."""
    for path in paths:
        path.unlink(missing_ok=True)


def check_device(device):
    """Raise CLIError when ``device`` cannot be used here (gpu without CuPy or a CUDA device, or on the
    fast tier without working numba.cuda kernels)."""
    if device == "cpu":
        return device
    from minigrad import tiers
    try:
        tiers.check_device(device)
    except (RuntimeError, ValueError) as e:
        raise CLIError(str(e)) from None
    return device


def load_model(path, device="cpu", images=None):
    """models.load (a network of any architecture the project reads) with a friendly message when
    shipped demo weights are absent.

    ``images``: the user's --image paths, if any; with a shipped shapes model they get a note
    (once) that this network knows only shapes, and how to use a real one.
    """
    import models
    path = Path(path)
    shipped = next((s for s in (DEFAULT_WEIGHTS, SHAPES_RESNET) if path.resolve() == s.resolve()), None)
    if images and path.exists() and shipped:
        warn(f"using the shipped demo model {shipped.relative_to(PROJECT_ROOT)}, trained only on "
             "10 synthetic shapes (circle, ring, triangle, ..., L-shape): on other pictures its classes and "
             "maps mean little. For a real network, convert VGG16 or ResNet weights and pass --weights FILE.h5 "
             "(weights/README.md says how)")
    if not path.exists() and shipped:
        raise CLIError(f"the demo weights {path} are missing: restore them with `git checkout "
                       f"{shipped.relative_to(PROJECT_ROOT)}` (weights/README.md: how they were made), "
                       "or pass --weights FILE.h5")
    check_device(device)
    return models.load(path, device=device)


def load_classifier(path, device="cpu", images=None):
    """load_model, refusing a network without its classifier (class scores need one)."""
    from models import network
    model = load_model(path, device, images)
    if not network.has_classifier(model):
        raise ValueError(f"{path}: this network has no classifier (converted without its top), so it has "
                         "no class scores")
    return model


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose errors (an unknown option, a value its type refuses) are one line on
    stderr and exit code 2, as every other error of the scripts (argparse's own adds the usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def warn(message):
    """One line on stderr, for notes that are not errors (image conversions, clipped --top...)."""
    print(f"{Path(sys.argv[0]).name}: note: {message}", file=sys.stderr)


def keep_freed_memory():
    """Ask the C allocator to keep freed memory for reuse rather than hand it back to the system.

    glibc's malloc serves every block over a threshold (128 KB, rising to at most 32 MB) with a fresh
    ``mmap`` and unmaps it on free. VGG16's activations are up to 13 MB per image (100 MB at batch 8),
    so every layer of every pass would get new pages, and the kernel faults in and zeroes each one
    (measured: 60-130 ms of system time per image, against a forward of about 400 ms). With
    ``M_MMAP_MAX = 0`` and a 2 GB trim threshold the heap is reused instead: no faults after the
    first pass. The price: memory freed after a peak stays with the process until it exits, and the
    heap can fragment (a VGG16 saliency run peaked at 822 MB with this and without).

    This changes the whole process (other libraries allocate from the same heap), so the library
    (minigrad) leaves it alone and each script, which owns its process, calls it from ``run``. It uses
    ctypes only, so it can run before NumPy is imported (the benchmark sets thread counts first).
    Returns True when it took effect (glibc), False elsewhere (then it is a no-op).
    """
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4                   # from glibc's <malloc.h>
    try:
        mallopt = ctypes.CDLL(None).mallopt                 # the C library already loaded
    except (OSError, AttributeError, TypeError):           # no mallopt (macOS, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1) and mallopt(M_MMAP_MAX, 0))   # musl's returns 0


def use_free_cores():
    """Size the engine's threads now, as the library does on its first heavy op
    (``minigrad.tiers.default_threads``: MINIGRAD_THREADS, or the cores no other process keeps busy),
    so that a bad MINIGRAD_THREADS stops the script at once, and give libraries loaded later (SciPy's
    own OpenBLAS) the same number."""
    import minigrad
    n = minigrad.tiers.default_threads()
    minigrad.set_threads(n)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # for libraries loaded later
        os.environ[var] = str(n)                                                   # (SciPy's own OpenBLAS)


class NoteInterrupt:
    """The scripts' SIGINT handler: notes the Ctrl-C (``interrupted``), then raises KeyboardInterrupt
    as Python's own handler does. The note outlives a KeyboardInterrupt that a library swallowed (one
    raised inside a weakref callback, such as h5py's clean-up, is printed and dropped):
    ``models.files.atomic_path`` then refuses to commit, and ``run`` exits 130."""

    def __init__(self):
        self.interrupted = False

    def __call__(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt


def run(main, argv=None):
    """Call ``main(argv)`` and exit with its return code; bad input exits 2 with one line.

    Run as a program (``argv`` None), a script owns its process, so it first lets the C allocator
    keep freed memory for reuse (``keep_freed_memory``: no page faults on every layer's activations),
    sizes the thread pools to the free cores (``use_free_cores``) and takes over Ctrl-C
    (:class:`NoteInterrupt`): a KeyboardInterrupt that a library swallowed still stops every output
    file from being committed, and the exit status is 130. However it ends, an output folder the run
    made and left empty is removed (``remove_empty_new_folders``).
    """
    prog = Path(sys.argv[0]).name
    note = NoteInterrupt()
    if argv is None:
        keep_freed_memory()
        signal.signal(signal.SIGINT, note)
    _new_folders.clear()
    try:
        try:
            if argv is None:
                use_free_cores()
            code = main(argv)
            if note.interrupted:                                   # raised, but lost on the way
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            code = 130
        except (CLIError, ValueError, OSError, RuntimeError, MemoryError) as e:
            if note.interrupted:                                   # an error caused by the interrupt
                print(f"{prog}: interrupted", file=sys.stderr)
                sys.exit(130)
            if os.environ.get("DEEPINSIDE_DEBUG"):
                raise
            message = str(e) or type(e).__name__
            if isinstance(e, MemoryError):
                message = "out of memory" + (f": {e}" if str(e) else "")
            elif isinstance(e, OSError) and e.filename and str(e.filename) not in message:
                message = f"{e.filename}: {message}"
            print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
            code = 2
    finally:
        remove_empty_new_folders()
    sys.exit(code or 0)
