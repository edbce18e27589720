"""Ctrl-C stops a script with exit status 130 and no output file, even where a library swallows it.

Python cannot propagate an exception raised inside a weakref callback or a finaliser: it prints
"Exception ignored in ..." and carries on. h5py closes its objects through such a callback (a
WeakValueDictionary), so a Ctrl-C landing while the converted weights file was being closed vanished,
and convert_weights.py printed "wrote ..." and exited 0.

To land the Ctrl-C there every time, the script runs in a child process where the call that finishes
the output (h5py's File.close for a file open for writing, PIL's save for a PNG) first waits inside a
weakref callback; the child says so on stdout, and the test then sends a real SIGINT from outside.
"""
import signal
import subprocess
import sys

import pytest
from PIL import Image

from models import shapes, vgg

from ..cli import ROOT, SCRIPTS
from ..saliency.twin import random_vgg

CHILD = r"""
import sys, time, weakref
sys.path[:0] = [sys.argv[1], sys.argv[2]]
script, where = sys.argv[3], sys.argv[4]
import h5py
from PIL import Image


def wait_in_a_weakref_callback():
    class Thing:
        pass

    def callback(_):                # a KeyboardInterrupt raised in here is printed and dropped
        print("waiting", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.01)

    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing                       # runs the callback


if where == "h5close":
    close = h5py.File.close

    def close_after_waiting(self):
        if self.id.valid and self.mode != "r":
            wait_in_a_weakref_callback()
        close(self)
    h5py.File.close = close_after_waiting
else:
    save = Image.Image.save

    def save_after_waiting(self, *args, **kwargs):
        wait_in_a_weakref_callback()
        save(self, *args, **kwargs)
    Image.Image.save = save_after_waiting

import runpy
sys.argv = [script] + sys.argv[5:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interrupt")
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    weights = tmp / "small.h5"
    vgg.save(model, weights)
    image = tmp / "shape.png"
    Image.fromarray(shapes.make_dataset(1, seed=5, size=32)[0][0]).save(image)
    return weights, image


def interrupt_while_waiting(script, where, *argv):
    """Start the script in the child above, send SIGINT once it waits; return (rc, stdout, stderr)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(SCRIPTS), str(SCRIPTS / script),
                              where, *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        lines = []
        for line in child.stdout:                           # the script's own output, then "waiting"
            lines.append(line)
            if line.strip() == "waiting":
                break
        assert lines and lines[-1].strip() == "waiting", (lines, child.stderr.read())
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, "".join(lines) + out, err


@pytest.mark.parametrize("script,where,out_name,extra", [
    ("convert_weights.py", "h5close", "converted.h5", ()),
    ("saliency_map.py", "pngsave", "maps", ("--target", "0")),
    ("class_model.py", "pngsave", "models", ("--target", "0", "--steps", "2")),
])
def test_ctrl_c_exits_130_and_leaves_no_file(small, tmp_path, script, where, out_name, extra):
    weights, image = small
    out = tmp_path / "out" / out_name
    if script == "convert_weights.py":
        argv = (weights, "--out", out)
    elif script == "class_model.py":
        argv = ("--weights", weights, "--out", out) + extra
    else:
        argv = ("--weights", weights, "--image", image, "--out", out) + extra
    rc, stdout, stderr = interrupt_while_waiting(script, where, *argv)
    assert rc == 130, (rc, stdout, stderr)
    assert "interrupted" in stderr.splitlines()[-1], stderr
    assert "wrote" not in stdout and "->" not in stdout, stdout
    left = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert left == [], left                                  # neither the output nor a temporary file
    assert not (tmp_path / "out").exists()                   # nor the folders the run made for it
