"""The spectral-bias experiment (Rahaman et al. 2019, Fig. 1): the target's spectrum, the
batched networks, the first-step read-out, the config's checks and one tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsa_bias.config import ConfigError
from rsa_bias.config.spectral import SpectralConfig, load_spectral_config, setting_amplitudes
from rsa_bias.experiments.spectral import (
    SPECTRAL_FILE,
    first_reached,
    fourier_amplitudes,
    grid,
    median_first_step,
    random_phases,
    record_steps,
    run_spectral_config,
    spectral_table,
    sum_of_sines,
    train_batched,
)
from rsa_bias.networks.batched_mlp import BatchedMLP, relu_mlp
from rsa_bias.store import read_results

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "spectral_bias.toml"
PAPER_KS = np.arange(5, 55, 5)


# --- the target and its spectrum -------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_points", [200, 101])
def test_target_spectrum_is_exactly_its_amplitudes(seed, n_points):
    rng = np.random.default_rng(seed)
    amps = rng.uniform(0.1, 3.0, len(PAPER_KS))
    z = grid(n_points)
    target = sum_of_sines(z, PAPER_KS, amps, random_phases(seed, len(PAPER_KS)))
    np.testing.assert_allclose(fourier_amplitudes(target, PAPER_KS), amps, rtol=0, atol=1e-12)
    others = [k for k in range(1, (n_points + 1) // 2) if k not in PAPER_KS]
    assert np.abs(fourier_amplitudes(target, others)).max() < 1e-12


@pytest.mark.parametrize("setting", ["equal", "rising"])
def test_each_setting_reads_back_its_amplitudes(setting):
    amps = setting_amplitudes(setting, len(PAPER_KS), 0.1)
    phases = random_phases(3, len(PAPER_KS))
    target = sum_of_sines(grid(200), PAPER_KS, amps, phases)
    np.testing.assert_allclose(fourier_amplitudes(target, PAPER_KS) / amps, 1.0, atol=1e-12)


def test_amplitude_settings():
    np.testing.assert_array_equal(setting_amplitudes("equal", 3), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(setting_amplitudes("rising", 10, 0.1), np.arange(1, 11) / 10)
    np.testing.assert_array_equal(setting_amplitudes("rising", 1, 0.1), [1.0])
    with pytest.raises(ValueError, match="unknown amplitude setting 'flat'"):
        setting_amplitudes("flat", 3)


def test_fourier_amplitudes_keep_leading_axes():
    values = np.random.default_rng(0).normal(size=(2, 3, 40))
    assert fourier_amplitudes(values, [1, 2, 5, 7]).shape == (2, 3, 4)


# --- the batched networks ------------------------------------------------------------------

def test_member_reproduces_forward_and_starts_as_relu_mlp():
    seeds = [0, 5, 0]
    model = BatchedMLP(seeds, depth=3, width=8)
    x = torch.rand(20, 1)
    out = model(x)
    assert out.shape == (3, 20, 1)
    for r, seed in enumerate(seeds):
        member = model.member(r)
        torch.testing.assert_close(member(x), out[r], rtol=0, atol=1e-6)
        alone = relu_mlp(seed, depth=3, width=8)
        for a, b in zip(member.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(out[0], out[2], rtol=0, atol=0)  # equal seeds, equal networks
    with torch.no_grad():
        model.member(1)[0].weight.zero_()  # a copy: the batched model is untouched
    torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    torch.testing.assert_close(model(x.expand(3, -1, -1)), out, rtol=0, atol=0)


def test_batched_mlp_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one seed"):
        BatchedMLP([], depth=1, width=4)
    model = BatchedMLP([0, 1], depth=1, width=4)
    with pytest.raises(ValueError, match="inputs, got shape"):
        model(torch.rand(5, 3))
    with pytest.raises(IndexError, match="out of range"):
        model.member(2)


def test_batched_training_equals_each_network_trained_alone():
    seeds, depth, width, lr, steps = [3, 7, 3], 3, 16, 1e-2, 6
    x = torch.tensor(grid(50), dtype=torch.float32).unsqueeze(1)
    y = torch.stack([torch.sin(2 * np.pi * k * x + k) for k in (1, 2, 4)])  # (R, n, 1)
    model = BatchedMLP(seeds, depth=depth, width=width)
    preds = train_batched(model, x, y, lr=lr, steps=steps, record_every=2)
    assert preds.shape == (4, 3, 50, 1)  # steps 0, 2, 4, 6
    for r, seed in enumerate(seeds):
        net = relu_mlp(seed, depth=depth, width=width)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        alone = []
        for step in range(steps + 1):
            pred = net(x)
            if step % 2 == 0:
                alone.append(pred.detach().numpy())
            if step == steps:
                break
            loss = ((pred - y[r]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(preds[:, r], np.stack(alone), rtol=0, atol=1e-5)
        for a, b in zip(model.member(r).parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


# --- reading the first step ----------------------------------------------------------------

def test_record_steps():
    np.testing.assert_array_equal(record_steps(300, 100), [0, 100, 200, 300])
    np.testing.assert_array_equal(record_steps(250, 100), [0, 100, 200, 250])


def test_first_reached_on_constructed_curves():
    steps = np.array([0, 100, 200, 300])
    curves = np.array([[0.0, 0.5, 0.95, 0.99],    # reaches at 200
                       [0.0, 0.9, 0.2, 0.1],      # exactly the threshold at 100, then falls
                       [0.95, 1.0, 1.0, 1.0],     # already at the start
                       [0.1, 0.2, 0.3, 0.899]]).T  # never
    first = first_reached(curves[None], steps, 0.9)  # (1, step, curve) -> (1, curve)
    np.testing.assert_array_equal(first[0], [200.0, 100.0, 0.0, np.nan])
    np.testing.assert_array_equal(first_reached(curves.T, steps, 0.9, axis=1),
                                  [200.0, 100.0, 0.0, np.nan])


def test_median_first_step_counts_never_as_latest():
    first = np.array([[100.0, 100.0, 300.0], [200.0, np.nan, np.nan], [np.nan, np.nan, 500.0]])
    np.testing.assert_array_equal(median_first_step(first), [200.0, np.nan, 500.0])
    np.testing.assert_array_equal(median_first_step(np.array([[100.0], [np.nan]])), [np.nan])


# --- the config ------------------------------------------------------------------------------

def test_shipped_config_is_the_papers_setting():
    cfg = load_spectral_config(SHIPPED)
    assert cfg.frequencies == tuple(PAPER_KS) and cfg.n_points == 200
    assert cfg.depth + 1 == 6 and cfg.width == 256 and cfg.record_every == 100
    assert len(cfg.seeds) >= 5 and set(cfg.amplitudes) == {"equal", "rising"}
    assert cfg.threshold == 0.9


@pytest.mark.parametrize(("override", "message"), [
    ('amplitudes=["flat"]', r"amplitudes: unknown setting\(s\) \['flat'\]; valid"),
    ('amplitudes=["equal", "equal"]', "amplitudes: lists a setting more than once"),
    ("amplitudes=[]", "amplitudes: list at least one setting"),
    ("lr=0", "lr: must be > 0, got 0.0"),
    ("lr=-1e-3", "lr: must be > 0"),
    ("lr=fast", r"lr: expected float, got 'fast'"),
    ("steps=0", "steps: must be >= 1, got 0"),
    ("depth=0", "depth: must be >= 1"),
    ("width=-4", "width: must be >= 1"),
    ("record_every=0", "record_every: must be >= 1"),
    ("record_every=100000", "record_every: 100000 is more than steps"),
    ("threshold=1.5", r"threshold: must be in \(0, 1\]"),
    ("threshold=0", r"threshold: must be in \(0, 1\]"),
    ("min_amplitude=0", r"min_amplitude: must be in \(0, 1\]"),
    ("frequencies=[10, 5]", "frequencies: must be strictly increasing"),
    ("frequencies=[0, 5]", "frequencies: frequencies must be >= 1"),
    ("frequencies=[5, 100]", "frequencies: 100 is at or above the Nyquist frequency"),
    ("seeds=[]", "seeds: at least one seed"),
    ("seeds=[1, 1]", "seeds: seeds must be unique"),
    ("seeds=[-1]", "seeds: a seed must be an integer"),
    ("device=tpu", "device: must be one of"),
    ("n_points=1", "n_points: must be >= 2"),
    ("lr=nan", "lr: must be a finite number"),
    ("learning_rate=0.1", "learning_rate: unknown key; valid keys here"),
])
def test_config_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_spectral_config(SHIPPED, [override])


def test_config_built_in_python_is_checked_too():
    with pytest.raises(ConfigError, match="amplitudes: expected a list, got 'equal'"):
        SpectralConfig(amplitudes="equal").validate()
    with pytest.raises(ConfigError, match=r"seeds: expected a list of int, got 1.5"):
        SpectralConfig(seeds=(1.5,)).validate()
    assert SpectralConfig(lr=1, seeds=(np.int64(2),)).validate().lr == 1


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_spectral_config(tmp_path / "nope.toml")


# --- end to end ------------------------------------------------------------------------------

TINY = SpectralConfig(name="tiny", seeds=(0, 1), frequencies=(1, 2, 3), n_points=16, depth=2,
                      width=16, lr=1e-2, steps=20, record_every=5, device="cpu")


def test_tiny_run_writes_labelled_results_and_the_figure(tmp_path):
    out = tmp_path / "run"
    results, paths = run_spectral_config(out, config=TINY, progress=False)
    assert set(paths) == {"spectral", "spectral_figure"}
    assert paths["spectral"] == out / SPECTRAL_FILE
    assert paths["spectral_figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    ds = read_results(paths["spectral"])
    assert dict(ds.sizes) == {"setting": 2, "seed": 2, "step": 5, "frequency": 3, "z": 16}
    assert list(ds.setting.values) == ["equal", "rising"]
    assert list(ds.seed.values) == [0, 1] and list(ds.frequency.values) == [1, 2, 3]
    np.testing.assert_array_equal(ds.step.values, [0, 5, 10, 15, 20])
    assert ds.normalised_amplitude.dims == ("setting", "seed", "step", "frequency")
    assert ds.first_step.dims == ("setting", "seed", "frequency")
    assert json.loads(ds.attrs["config_json"]) == json.loads(json.dumps(TINY.to_dict()))
    assert ds.attrs["method"] == "spectral_bias" and json.loads(ds.attrs["seed"]) == [0, 1]
    assert ds.attrs["threshold"] == 0.9 and "config_hash" in ds.attrs
    # the target the networks were fit to reads back its amplitudes
    norm = fourier_amplitudes(ds.target.values, TINY.frequencies) / ds.amplitude.values[:, None]
    np.testing.assert_allclose(norm, 1.0, atol=1e-12)
    # the last recorded prediction is the one kept
    last = fourier_amplitudes(ds.final_prediction.values, TINY.frequencies)
    np.testing.assert_allclose(last / ds.amplitude.values[:, None],
                               ds.normalised_amplitude.isel(step=-1).values, atol=1e-9)

    table = spectral_table(results)
    assert len(table) == 6
    assert {"setting", "frequency", "amplitude", "median_first_step", "fraction_reached",
            "final_median", "spearman", "monotone", "n_learned"} <= set(table.columns)
    assert table.fraction_reached.between(0, 1).all()
    reached = table.fraction_reached > 0
    assert table.median_first_step[table.fraction_reached < 0.5].isna().all()
    assert table.median_first_step[reached & table.median_first_step.notna()].isin(
        ds.step.values).all()


def test_run_from_a_config_path_without_figures(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text('name = "tiny"\nseeds = [4]\nfrequencies = [1, 2]\nn_points = 8\n'
                    'amplitudes = ["rising"]\ndepth = 1\nwidth = 8\nsteps = 4\n'
                    'record_every = 2\ndevice = "cpu"\n')
    results, paths = run_spectral_config(tmp_path / "out", config=toml, progress=False,
                                         figures=False)
    assert set(paths) == {"spectral"}
    ds = results["spectral"]
    assert list(ds.setting.values) == ["rising"] and list(ds.step.values) == [0, 2, 4]
    np.testing.assert_allclose(ds.amplitude.values, [[0.1, 1.0]])


def test_plot_refuses_other_results():
    import xarray as xr

    from rsa_bias.plotting.spectral import plot_spectral

    with pytest.raises(ValueError, match="not a spectral-bias result"):
        plot_spectral(xr.Dataset({"x": ("a", [1.0])}))
