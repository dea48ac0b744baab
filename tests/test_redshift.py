"""The Neural Redshift experiment: labelled sweeps, their summaries on known data, the verb."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr
from cli_helpers import one_line_error, run_main

from rsa_bias.analysis.complexity import fourier_frequency, lz_complexity
from rsa_bias.config import ConfigError
from rsa_bias.config.redshift import (
    RandomGPTSweep,
    RandomMLPSweep,
    RedshiftConfig,
    load_redshift_config,
)
from rsa_bias.experiments.redshift import (
    MEASURES,
    complexity_ratios,
    measure_agreement,
    random_gpt_sweep,
    random_mlp_sweep,
    run_redshift_config,
    variant_effect,
)
from rsa_bias.networks.random_mlp import grid_points, random_mlp_outputs

TINY = RedshiftConfig(
    grid_size=16, max_order=4, device="cpu",
    mlp=RandomMLPSweep(activations=("relu", "sine"), variants=("plain", "layer_norm"),
                       scales=(0.3, 30.0), depths=(1, 3), width=8, n_networks=3,
                       example_depth=3),
    transformer=RandomGPTSweep(activations=("relu", "sine"), ln_gains=(1.0, 4.0),
                               depths=(1,), n_models=2, vocab=8, width=16, n_heads=2,
                               n_tokens=24, prompt_len=3))
TINY_SET = ["--set", "grid_size=16", "--set", "max_order=4", "--set", "device='cpu'",
            "--set", 'mlp.activations=["relu","tanh"]', "--set", "mlp.scales=[1.0,10.0]",
            "--set", "mlp.depths=[1,3]", "--set", "mlp.width=8", "--set", "mlp.n_networks=2",
            "--set", 'mlp.variants=["plain","residual"]',
            "--set", 'transformer.activations=["relu"]', "--set", "transformer.ln_gains=[1.0]",
            "--set", "transformer.depths=[1]", "--set", "transformer.n_models=2",
            "--set", "transformer.width=16", "--set", "transformer.n_tokens=16"]


@pytest.fixture(scope="module")
def mlp():
    return random_mlp_sweep(TINY, progress=False)


def test_mlp_sweep_is_labelled_and_pairs_its_draws(mlp):
    assert mlp["fourier_frequency"].dims == ("activation", "variant", "scale", "depth",
                                             "network")
    assert list(mlp.activation.values) == ["relu", "sine"]
    assert mlp["example"].dims == ("activation", "scale", "y", "x")
    assert mlp["example"].shape == (2, 2, 16, 16)
    for m in MEASURES:
        assert np.isfinite(mlp[m].values).all()
    # depth-1 ReLU networks at two scales differ by a factor and a constant: paired draws
    # give equal measures (a sweep drawing each cell independently would not)
    relu = mlp.sel(activation="relu", variant="plain", depth=1)
    for m in MEASURES:
        np.testing.assert_allclose(relu[m].sel(scale=0.3), relu[m].sel(scale=30.0), atol=1e-5)
    assert str(mlp.attrs["seed"]) == "0" and "config_json" in mlp.attrs


def test_measure_settings_flow_from_the_config_into_the_measures():
    cell = dataclasses.replace(TINY.mlp, activations=("sine",), variants=("plain",),
                               scales=(30.0,), depths=(3,))
    cfg = dataclasses.replace(TINY, levels=8, fourier_boundary="mirror", mlp=cell)
    ds = random_mlp_sweep(cfg, progress=False)
    values = random_mlp_outputs(grid_points(16), n_networks=3, activation="sine", depth=3,
                                width=8, scale=30.0, seed=0, device="cpu", dtype="float64")
    values = values.double().numpy().reshape(-1, 16, 16)
    got = {m: ds[m].values.ravel() for m in MEASURES}
    np.testing.assert_allclose(got["lz_complexity"], lz_complexity(values, levels=8))
    assert not np.allclose(got["lz_complexity"], lz_complexity(values, levels=2))
    np.testing.assert_allclose(got["fourier_frequency"],
                               fourier_frequency(values, boundary="mirror"))
    assert ds.attrs["levels"] == 8 and ds.attrs["fourier_boundary"] == "mirror"
    assert ds.attrs["dtype"] == TINY.mlp.dtype == "float64"


def test_gpt_sweep_is_labelled():
    ds = random_gpt_sweep(TINY, progress=False)
    assert ds["lz_complexity"].dims == ("activation", "ln_gain", "depth", "model")
    assert ds["lz_complexity"].shape == (2, 2, 1, 2)
    assert ((ds["distinct_tokens"] >= 1) & (ds["distinct_tokens"] <= 8)).all()
    assert (ds["lz_complexity"] > 0).all()


def constructed() -> xr.Dataset:
    """A sweep with known answers: ReLU flat at 0.2, tanh 0.2 at small A rising to 0.6."""
    scales, depths = [1.0, 10.0, 100.0], [1, 3, 5]
    coords = {"activation": ["relu", "tanh"], "variant": ["plain", "residual"],
              "scale": scales, "depth": depths, "network": [0, 1]}
    values = np.full((2, 2, 3, 3, 2), 0.2)
    values[1, 0, 1:, 1:] = 0.6                 # tanh plain, large A and deep
    values[1, 0, 2, 2] = [0.8, 0.9]            # its most complex cell
    values[1, 1] = 0.3                         # tanh residual: lower everywhere
    values[0, :, :, :, 1] = 0.22               # ReLU network noise
    rank = values.copy()
    return xr.Dataset({"fourier_frequency": (tuple(coords), values),
                       "polynomial_order": (tuple(coords), 0.5 * values + 0.1),
                       "lz_complexity": (tuple(coords), -rank)}, coords=coords)


def test_complexity_ratios_on_known_values():
    table = complexity_ratios(constructed()).set_index(["activation", "measure"])
    relu = table.loc[("relu", "fourier_frequency")]
    assert relu["large"] == pytest.approx(0.21) and relu["vs_relu"] == pytest.approx(1.0)
    assert relu["cell_spread"] == pytest.approx(0.0)
    assert relu["network_sd"] == pytest.approx(np.std([0.2, 0.22], ddof=1))
    tanh = table.loc[("tanh", "fourier_frequency")]
    assert tanh["small"] == pytest.approx(0.2)
    assert tanh["large"] == pytest.approx((0.6 * 3 + 0.85) / 4)
    assert tanh["vs_relu"] == pytest.approx(tanh["large"] / 0.21)
    assert tanh["cell_spread"] == pytest.approx(0.85 - 0.2)


def test_variant_effect_picks_the_most_complex_plain_cell():
    table = variant_effect(constructed()).set_index(["activation", "measure"])
    row = table.loc[("tanh", "fourier_frequency")]
    assert (row["scale"], row["depth"]) == (100.0, 5)
    assert row["plain"] == pytest.approx(0.85) and row["residual"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="plain"):
        variant_effect(constructed().sel(variant=["residual"]))


def test_measure_agreement_is_spearman_over_cell_means():
    rho = measure_agreement(constructed())
    assert rho.loc["fourier_frequency", "polynomial_order"] == pytest.approx(1.0)
    assert rho.loc["fourier_frequency", "lz_complexity"] == pytest.approx(-1.0)
    from scipy.stats import spearmanr

    ds = constructed()
    rng = np.random.default_rng(0)
    ds["polynomial_order"] = ds["polynomial_order"] + rng.normal(size=ds["polynomial_order"].shape)
    want = spearmanr(ds["fourier_frequency"].mean("network").values.ravel(),
                     ds["polynomial_order"].mean("network").values.ravel()).statistic
    assert measure_agreement(ds).loc["polynomial_order", "fourier_frequency"] == \
        pytest.approx(want)


def test_run_writes_labelled_files_and_figures(tmp_path):
    results, paths = run_redshift_config(tmp_path, config=TINY, progress=False)
    back = xr.open_dataset(paths["mlp"])
    xr.testing.assert_allclose(back["lz_complexity"].load(), results["mlp"]["lz_complexity"])
    assert back.attrs["method"] == "random_mlp_sweep"
    for key in ("config_json", "rsa_bias_version", "git_sha"):
        assert key in back.attrs
    back.close()
    pngs = [p for p in paths.values() if str(p).endswith(".png")]
    assert len(pngs) >= 3 and all(p.stat().st_size > 1000 for p in pngs)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="mlp.activations"):
        load_redshift_config("models/redshift.toml", ['mlp.activations=["relu","softsign"]'])
    with pytest.raises(ConfigError, match="n_heads"):
        load_redshift_config("models/redshift.toml", ["transformer.n_heads=5"])
    with pytest.raises(ConfigError, match="grid_size"):
        load_redshift_config("models/redshift.toml", ["grid_size=8"])
    cfg = load_redshift_config("models/redshift.toml")
    assert cfg.mlp.scales[0] == 0.1 and cfg.mlp.scales[-1] == 100.0
    assert set(cfg.mlp.activations) == {"relu", "gelu", "silu", "selu", "tanh", "sigmoid",
                                        "gaussian", "sine"}


def test_redshift_verb_prints_the_tables_and_writes_the_files(tmp_path):
    code, out, err = run_main(["redshift", "models/redshift.toml", "--out", str(tmp_path),
                               *TINY_SET, "--no-progress", "--no-figures"])
    assert code == 0, err
    assert "tanh" in out and "Spearman" in out and "fourier_frequency_vs_relu" in out
    assert (tmp_path / "redshift_mlp.nc").exists()
    assert (tmp_path / "redshift_transformer.nc").exists()
    code, _, err = run_main(["redshift", "models/redshift.toml", "--out", str(tmp_path),
                             "--set", "mlp.width=0"])
    assert code != 0 and "mlp.width" in one_line_error(err)
