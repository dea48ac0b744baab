"""Config kinds: `validate` checks the configs of every verb; `run` and `sweep` name the verb
of a redshift or spectral config instead of calling its keys unknown."""

from __future__ import annotations

import pytest
import torch

from rsa_bias.cli import main
from rsa_bias.config import ConfigError, load_config
from rsa_bias.config.kinds import config_kind, load_any_config
from rsa_bias.config.redshift import load_redshift_config


@pytest.mark.parametrize("config, verb", [("models/redshift.toml", "redshift"),
                                          ("models/spectral_bias.toml", "spectral"),
                                          ("models/complexity_bias.toml", "run")])
def test_validate_takes_every_kind(config, verb, capsys):
    assert main(["validate", config]) == 0
    assert capsys.readouterr().out.strip().endswith(f"valid (run it with rsa-bias {verb})")


def test_validate_applies_overrides_and_its_checks():
    cfg, verb = load_any_config("models/redshift.toml", ["levels=2"])
    assert verb == "redshift" and cfg.levels == 2
    assert cfg == load_redshift_config("models/redshift.toml", ["levels=2"])
    with pytest.raises(ConfigError, match="levels"):
        load_any_config("models/redshift.toml", ["levels=1"])


@pytest.mark.parametrize("config, verb", [("models/redshift.toml", "redshift"),
                                          ("models/spectral_bias.toml", "spectral")])
def test_run_and_sweep_name_the_verb_of_another_kind(config, verb, tmp_path, capsys):
    for argv in (["run", config], ["sweep", config, "--grid", "name=a,b"]):
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        assert f"run it with `rsa-bias {verb} {config} --out DIR`" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=f"rsa-bias {verb}"):
        load_config(config)


def test_kind_by_top_level_keys():
    assert config_kind({"name": "x", "task": {}, "model": {}}) == "experiment"
    assert config_kind({"name": "x", "grid_size": 8, "mlp": {}}) == "redshift"
    assert config_kind({"frequencies": [5], "n_points": 200}) == "spectral"
    assert config_kind({"task": {}, "seed": 0}) == "experiment"  # a typo stays an error
    with pytest.raises(ConfigError, match="seed: unknown key"):
        from rsa_bias.config import config_from_dict
        config_from_dict({"name": "x", "seed": 0, "task": {}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_validate_notes_a_device_this_machine_lacks(capsys):
    assert main(["validate", "models/complexity_bias.toml", "--set",
                 'training.device="cuda"']) == 0
    assert "needs CUDA, which this machine lacks" in capsys.readouterr().err
