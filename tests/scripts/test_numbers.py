"""Number options refuse NaN and infinities (float() accepts 'nan', 'inf', '1e999'): one line, exit 2.
`--lr nan` once ran class_model.py to the end and wrote a black picture with exit status 0."""
import argparse
import sys

import pytest

from ..cli import SCRIPTS, call, load_script, one_error_line

ALL = sorted(p.stem for p in SCRIPTS.glob("*.py") if not p.stem.startswith("_"))


class Captured(Exception):
    pass


def parser_of(name, monkeypatch):
    """The ArgumentParser that ``name``'s parse_args builds (caught as it parses)."""
    module = load_script(name)

    def capture(self, *args, **kwargs):
        raise Captured(self)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Captured) as info:
        module.parse_args([])
    monkeypatch.undo()
    return info.value.args[0]


def number_options():
    """(script, option) for every option of every script whose values are real numbers."""
    found = []
    with pytest.MonkeyPatch.context() as mp:
        for name in ALL:
            parser = parser_of(name, mp)
            finite_float = sys.modules["_common"].finite_float       # loaded with the script
            found += [(name, action.option_strings[-1]) for action in parser._actions
                      if action.type in (float, finite_float)]
    return found


def test_no_script_takes_a_plain_float(monkeypatch):
    plain = [(name, action.option_strings) for name in ALL
             for action in parser_of(name, monkeypatch)._actions if action.type is float]
    assert plain == [], "type=float accepts nan and inf: use _common.finite_float"


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_every_number_option_refuses_non_finite_values(monkeypatch, text):
    options = number_options()
    assert len(options) >= 10, options                       # lr, l2, quantiles, sigmas, ...
    for name, option in options:
        with pytest.raises(SystemExit) as info:
            load_script(name).parse_args([f"{option}={text}"])
        assert info.value.code == 2, (name, option)


@pytest.mark.parametrize("script,argv", [
    ("class_model", ("--target", "0", "--steps", "2", "--lr", "nan")),
    ("train_shapes", ("--epochs", "1", "--train-size", "8", "--test-size", "8", "--size", "16", "--lr", "inf")),
    ("saliency_map", ("--image", "x.png", "--clip-percentile", "nan")),
])
def test_one_line_and_exit_2(tmp_path, capsys, script, argv):
    assert call(script, *argv, "--out", tmp_path / ("x.h5" if script == "train_shapes" else "o")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is not a finite number" in line and argv[-2] in line, line
