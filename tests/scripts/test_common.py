"""scripts/_common.py: the allocator setting every script makes when run as a program."""
import subprocess
import sys

import pytest

from ..cli import SCRIPTS

PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import _common
ok = _common.keep_freed_memory() if sys.argv[2] == "keep" else None
def faults_of_a_fresh_64mb_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(64 * 2**20)          # malloc + memset: touches all 16384 pages of 4 KB
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_fresh_64mb_block()             # the first time, pages are new either way
print(ok, faults_of_a_fresh_64mb_block())
"""


def probe(mode):
    out = subprocess.run([sys.executable, "-c", PROBE, str(SCRIPTS), mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_keep_freed_memory_stops_page_faults_on_reallocation():
    """A 64 MB block freed and allocated again: glibc's default unmaps it on free, so the second one
    faults its pages in afresh; after keep_freed_memory it reuses the heap and faults (almost) none.
    The bound, 1/16 of the 16384 pages, leaves room for the interpreter's own allocations."""
    took_effect, faults = probe("keep")
    if took_effect != "True":
        pytest.skip("not glibc: mallopt is unavailable, keep_freed_memory is a no-op")
    assert faults < 1024, faults
    _, faults_by_default = probe("default")            # the control: measured 16385 here, against 0
    assert faults_by_default > faults, (faults_by_default, faults)


# ------------------------------------------------------------------------------------------------
# --out that cannot be written: refused before any work, naming the folder
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def unwritable(tmp_path):
    """A folder in which this user cannot make files: one with mode 0555, or, where that does not
    stop us (root ignores permission bits), /sys, whose file system refuses new files to anyone."""
    import os
    import tempfile
    from pathlib import Path
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            yield candidate
            break
    else:
        pytest.skip("no folder here refuses new files to this user")
    folder.chmod(0o755)
    assert os.access(folder, os.W_OK)


def _sample_image(tmp_path):
    from PIL import Image

    from models import shapes
    path = tmp_path / "shape.png"
    Image.fromarray(shapes.make_dataset(1, seed=5, size=64)[0][0]).save(path)
    return path


@pytest.mark.parametrize("script,argv", [
    ("saliency_map", ("--image", "IMAGE", "--out", "OUT")),
    ("deconvnet", ("--image", "IMAGE", "--out", "OUT")),
    ("localise", ("--image", "IMAGE", "--out", "OUT")),
    ("class_model", ("--target", "0", "--steps", "2", "--out", "OUT")),
    ("demo", ("--fast", "--out", "OUT")),
    ("convert_weights", ("WEIGHTS", "--out", "OUT/converted.h5")),
    ("train_shapes", ("--train-size", "8", "--test-size", "8", "--epochs", "1", "--size", "16",
                      "--out", "OUT/trained.h5")),
    ("saliency_map", ("--image", "IMAGE", "--out", "OUT/new/deeper")),     # folders still to be made
])
def test_unwritable_out_fails_before_the_work_naming_the_folder(unwritable, tmp_path, capsys, script, argv):
    from ..cli import ROOT, call, one_error_line
    subst = {"IMAGE": str(_sample_image(tmp_path)), "WEIGHTS": str(ROOT / "weights" / "shapes_vgg.h5")}
    argv = [subst.get(a, a.replace("OUT", str(unwritable))) for a in argv]
    assert call(script, *argv) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert f"folder {unwritable}" in line and ".tmp" not in line, line
    assert captured.out == "" and "%|" not in captured.err, captured        # nothing ran: no output, no bar


def test_out_that_is_a_file_or_a_folder_for_a_file(tmp_path, capsys):
    from ..cli import ROOT, call, one_error_line
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert call("saliency_map", "--image", _sample_image(tmp_path), "--out", a_file) == 2
    assert f"{a_file} exists and is not a folder" in one_error_line(capsys.readouterr().err)
    assert call("saliency_map", "--image", _sample_image(tmp_path), "--out", a_file / "sub") == 2
    assert f"{a_file} is not a folder" in one_error_line(capsys.readouterr().err)
    assert call("convert_weights", ROOT / "weights" / "shapes_vgg.h5", "--out", tmp_path) == 2
    assert f"{tmp_path} is a folder" in one_error_line(capsys.readouterr().err)
