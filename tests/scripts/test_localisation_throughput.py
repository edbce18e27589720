"""localisation_throughput.py: the projection of ILSVRC-2012 val's time, on a small network (no timed
assertions: only that each architecture is projected and the numbers add up)."""
import json

import pytest

from ..cli import call, one_error_line


def test_projects_each_architecture(tmp_path, capsys):
    assert call("localisation_throughput", "--no-shapes", "--arch", "resnet18,vgg11", "--size", 32, "--workers", 1,
                "--repeats", 1, "--out", tmp_path) == 0
    report = json.loads((tmp_path / "throughput.json").read_text())
    assert set(report["projection"]) == {"resnet18_1_workers", "vgg11_1_workers"}
    for unit in report["projection"].values():
        assert unit["scores_s"] > 0 and unit["map_graphcut_s"] > 0
        assert unit["per_image_s"] == pytest.approx(unit["scores_s"] + 5 * unit["map_graphcut_s"])
        assert unit["ilsvrc_val_hours_per_worker"] == pytest.approx(50_000 * unit["per_image_s"] / 3600)
    out = capsys.readouterr().out
    assert "resnet18 at 32:" in out and "vgg11 at 32:" in out


def test_unknown_architecture_is_one_line(tmp_path, capsys):
    assert call("localisation_throughput", "--arch", "resnet51", "--out", tmp_path) == 2
    assert "--arch: unknown resnet51; use vgg11" in one_error_line(capsys.readouterr().err)
