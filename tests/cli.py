"""Running the command-line scripts from tests: in-process (fast) or as a real subprocess."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def load_script(name):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(name, *argv):
    """Run a script's main in-process through _common.run; returns the exit code."""
    module = load_script(name)
    common = sys.modules["_common"]
    with pytest.raises(SystemExit) as exit_info:
        common.run(module.main, [str(a) for a in argv])
    return exit_info.value.code


def subprocess_run(name, *argv, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *map(str, argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def one_error_line(err):
    """The error output is exactly one line, with 'error:' and no traceback."""
    lines = [line for line in err.strip().splitlines() if "error:" in line or "Traceback" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
