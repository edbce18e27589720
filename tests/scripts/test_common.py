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
