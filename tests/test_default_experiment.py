"""Acceptance check of the shipped default experiment (slow: the full 10-seed run).

Run with ``pytest -m slow``; CI runs it after the default test command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsa_bias.cli import main
from rsa_bias.config import load_config
from rsa_bias.store import read_activations, read_results

DEFAULT = Path(__file__).resolve().parent.parent / "models" / "complexity_bias.toml"


@pytest.mark.slow
def test_default_experiment_shows_complexity_bias(tmp_path, capsys):
    cfg = load_config(DEFAULT)
    assert len(cfg.seeds) >= 10
    assert main(["run", str(DEFAULT), "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "total time" in printed

    res = read_results(tmp_path / "results.nc")
    assert res.sizes["seed"] == len(cfg.seeds)
    final_acc = res.accuracy.sel(split="test").isel(eval_step=-1)
    assert float(final_acc.min()) >= 0.99, final_acc.to_pandas()

    penultimate = str(res.layer.values[-1])
    r2 = res.r2.sel(layer=penultimate).isel(step=-1)
    easy, hard = (float(r2.sel(feature=f).mean("seed")) for f in ("easy", "hard"))
    assert easy >= 2 * hard, r2.to_pandas()
    assert r2.notnull().all()

    tree = read_activations(tmp_path / "activations.nc", layers=[penultimate])
    assert tree[penultimate]["activation"].sizes["seed"] == len(cfg.seeds)
    for name in ("r2_by_layer.png", "training_curves.png", "pca.png"):
        assert (tmp_path / name).stat().st_size > 0
