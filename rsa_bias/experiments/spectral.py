"""The spectral bias of ReLU networks (Rahaman et al. 2019, "On the spectral bias of neural
networks", Fig. 1): low frequencies are learned first.

A ReLU MLP is fit (full-batch Adam, mean squared error) to
``lambda(z) = sum_i A_i sin(2 pi k_i z + phi_i)`` on ``N`` evenly spaced points of
``[0, 1)``; every ``record_every`` steps the spectrum of its prediction is read at each
``k_i`` as ``|f_hat(k_i)| / A_i`` with ``|f_hat(k)| = (2/N) |sum_n f(z_n) exp(-2 pi i k z_n)|``
(exactly ``A_i`` for the target itself). Every (amplitude setting, seed) network trains in
one batched computation (:class:`~rsa_bias.networks.batched_mlp.BatchedMLP`). The result is
the first recorded step at which each frequency reaches ``threshold`` (0.9) of its amplitude.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from rsa_bias.config.spectral import (
    SpectralConfig,
    load_spectral_config,
    setting_amplitudes,
)
from rsa_bias.networks.batched_mlp import BatchedMLP
from rsa_bias.provenance import provenance_attrs
from rsa_bias.training.loop import resolve_device

SPECTRAL_FILE = "spectral.nc"


def grid(n_points: int) -> np.ndarray:
    """The ``n_points`` evenly spaced inputs ``z_n = n / n_points`` of ``[0, 1)``.

    Parameters
    ----------
    n_points : int
        Number of points ``N``.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.
    """
    return np.arange(n_points) / n_points


def random_phases(seed: int, n_frequencies: int) -> np.ndarray:
    """The phases ``phi_i ~ U(0, 2 pi)`` of one repeat.

    Parameters
    ----------
    seed : int
        Seeds ``numpy.random.default_rng``.
    n_frequencies : int
        Number of phases.

    Returns
    -------
    numpy.ndarray
        ``(n_frequencies,)`` float64.
    """
    return np.random.default_rng(seed).uniform(0.0, 2 * np.pi, n_frequencies)


def sum_of_sines(z: np.ndarray, frequencies, amplitudes, phases) -> np.ndarray:
    """``sum_i A_i sin(2 pi k_i z + phi_i)``.

    Parameters
    ----------
    z : numpy.ndarray
        ``(N,)`` inputs.
    frequencies, amplitudes, phases : array_like
        ``k_i``, ``A_i`` and ``phi_i``, one per component.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.
    """
    k, a, phi = (np.asarray(v, dtype=float) for v in (frequencies, amplitudes, phases))
    return (a * np.sin(2 * np.pi * np.outer(z, k) + phi)).sum(axis=1)


def fourier_amplitudes(values: np.ndarray, frequencies) -> np.ndarray:
    """``|f_hat(k)| = (2/N) |sum_n f(z_n) exp(-2 pi i k z_n)|`` on ``z_n = n / N``.

    For a sum of sines at integer frequencies below ``N / 2`` this is each component's
    amplitude, exactly (up to float64 rounding).

    Parameters
    ----------
    values : numpy.ndarray
        ``(..., N)`` function values on the grid of :func:`grid`.
    frequencies : array_like
        The integer frequencies ``k`` read.

    Returns
    -------
    numpy.ndarray
        ``(..., len(frequencies))`` amplitudes.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    basis = np.exp(-2j * np.pi * np.outer(grid(n), np.asarray(frequencies, dtype=float)))
    return 2.0 / n * np.abs(values @ basis)


def _targets(cfg: SpectralConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitudes ``(setting, k)``, phases ``(seed, k)`` and targets ``(setting, seed, N)``."""
    n_k, z = len(cfg.frequencies), grid(cfg.n_points)
    amps = np.stack([setting_amplitudes(s, n_k, cfg.min_amplitude) for s in cfg.amplitudes])
    phases = np.stack([random_phases(s, n_k) for s in cfg.seeds])
    targets = np.stack([[sum_of_sines(z, cfg.frequencies, a, p) for p in phases]
                        for a in amps])
    return amps, phases, targets


def record_steps(steps: int, record_every: int) -> np.ndarray:
    """The steps the spectrum is recorded at: 0, every ``record_every``, and ``steps``.

    Parameters
    ----------
    steps : int
        Training steps.
    record_every : int
        Steps between records.

    Returns
    -------
    numpy.ndarray
        Increasing int64 steps.
    """
    return np.union1d(np.arange(0, steps + 1, record_every), [steps]).astype(np.int64)


def train_batched(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor, *, lr: float,
                  steps: int, record_every: int, progress: bool = False) -> np.ndarray:
    """Full-batch Adam on the summed per-repeat mean squared errors; predictions recorded.

    Parameters
    ----------
    model : BatchedMLP
        The ``R`` networks (trained in place).
    x : torch.Tensor
        ``(n, in)`` inputs shared by every repeat.
    y : torch.Tensor
        ``(R, n, out)`` targets, one per repeat.
    lr : float
        Adam's learning rate.
    steps : int
        Adam steps.
    record_every : int
        Steps between records (:func:`record_steps`).
    progress : bool, default False
        Show a progress bar over the steps.

    Returns
    -------
    numpy.ndarray
        ``(len(record_steps), R, n, out)`` float32 predictions, the network after that
        many steps.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    keep = set(record_steps(steps, record_every).tolist())
    out = []
    for step in tqdm(range(steps + 1), desc="spectral bias", unit="step",
                     disable=not progress, mininterval=1.0):
        pred = model(x)
        if step in keep:
            out.append(pred.detach().cpu().numpy())
        if step == steps:
            break
        loss = ((pred - y) ** 2).mean(dim=(1, 2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return np.stack(out)


def first_reached(values: np.ndarray, steps: np.ndarray, threshold: float,
                  axis: int = -2) -> np.ndarray:
    """The first step at which ``values`` reach ``threshold`` along ``axis`` (NaN: never).

    Parameters
    ----------
    values : numpy.ndarray
        Normalised amplitudes with a step axis.
    steps : numpy.ndarray
        The step of each position along ``axis``.
    threshold : float
        The level to reach (``>=``).
    axis : int, default -2
        The step axis.

    Returns
    -------
    numpy.ndarray
        ``values`` without ``axis``: float steps, NaN where the level is never reached.
    """
    hit = np.asarray(values) >= threshold
    first = np.asarray(steps, dtype=float)[np.argmax(hit, axis=axis)]
    return np.where(hit.any(axis=axis), first, np.nan)


def run_spectral(config: SpectralConfig, *, progress: bool = True) -> xr.Dataset:
    """Train every (amplitude setting, seed) network of ``config`` and read its spectrum.

    Parameters
    ----------
    config : SpectralConfig
        The experiment; validated first.
    progress : bool, default True
        Show a progress bar over the training steps.

    Returns
    -------
    xarray.Dataset
        Dims ``setting`` (the amplitude settings), ``seed``, ``step`` (the recorded steps),
        ``frequency`` and ``z``: ``normalised_amplitude`` ``(setting, seed, step,
        frequency)`` (``|f_hat(k)| / A_k``), ``loss`` ``(setting, seed, step)`` (mean
        squared error), ``first_step`` ``(setting, seed, frequency)`` (the first recorded
        step reaching ``config.threshold``, NaN when never), ``amplitude`` ``(setting,
        frequency)``, ``phase`` ``(seed, frequency)`` and ``target`` / ``final_prediction``
        ``(setting, seed, z)``. Attrs: provenance (config JSON and hash, seeds, version),
        the settings and ``n_never`` (the (setting, seed, frequency) that never reach the
        threshold).
    """
    cfg = config.validate()
    amps, phases, targets = _targets(cfg)
    n_set, n_seed = len(cfg.amplitudes), len(cfg.seeds)
    device = resolve_device(cfg.device)
    # setting-major: repeat s * n_seed + j is seed j of setting s (paired initialisations)
    model = BatchedMLP(list(cfg.seeds) * n_set, depth=cfg.depth, width=cfg.width).to(device)
    x = torch.tensor(grid(cfg.n_points), dtype=torch.float32, device=device).unsqueeze(1)
    y = torch.tensor(targets.reshape(n_set * n_seed, -1, 1), dtype=torch.float32,
                     device=device)
    preds = train_batched(model, x, y, lr=cfg.lr, steps=cfg.steps,
                          record_every=cfg.record_every, progress=progress)
    preds = preds[..., 0].reshape(len(preds), n_set, n_seed, cfg.n_points)
    preds = preds.transpose(1, 2, 0, 3).astype(np.float64)  # (setting, seed, step, N)
    return _dataset(cfg, preds, amps, phases, targets)


def _dataset(cfg: SpectralConfig, preds: np.ndarray, amps: np.ndarray, phases: np.ndarray,
             targets: np.ndarray) -> xr.Dataset:
    steps = record_steps(cfg.steps, cfg.record_every)
    norm = fourier_amplitudes(preds, cfg.frequencies) / amps[:, None, None, :]
    loss = ((preds - targets[:, :, None, :]) ** 2).mean(axis=-1)
    first = first_reached(norm, steps, cfg.threshold)
    dims = ("setting", "seed")
    ds = xr.Dataset(
        {"normalised_amplitude": (dims + ("step", "frequency"), norm),
         "loss": (dims + ("step",), loss),
         "first_step": (dims + ("frequency",), first),
         "amplitude": (("setting", "frequency"), amps),
         "phase": (("seed", "frequency"), phases),
         "target": (dims + ("z",), targets),
         "final_prediction": (dims + ("z",), preds[:, :, -1])},
        coords={"setting": list(cfg.amplitudes), "seed": list(cfg.seeds), "step": steps,
                "frequency": list(cfg.frequencies), "z": grid(cfg.n_points)})
    ds.attrs.update(provenance_attrs(cfg, seed=list(cfg.seeds), method="spectral_bias"))
    ds.attrs.update(threshold=cfg.threshold, lr=cfg.lr, steps=cfg.steps,
                    record_every=cfg.record_every, depth=cfg.depth, width=cfg.width,
                    n_points=cfg.n_points, min_amplitude=cfg.min_amplitude,
                    n_never=int(np.isnan(first).sum()))
    return ds


def median_first_step(first: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median first step over repeats, a repeat that never reaches the level counted as later
    than every step.

    Parameters
    ----------
    first : numpy.ndarray
        First steps (:func:`first_reached`), NaN where never reached.
    axis : int, default 0
        The repeat axis.

    Returns
    -------
    numpy.ndarray
        ``first`` without ``axis``; NaN where half or more of the repeats never reach it.
    """
    med = np.median(np.where(np.isnan(first), np.inf, first), axis=axis)
    return np.where(np.isfinite(med), med, np.nan)


def spectral_table(results: dict[str, xr.Dataset] | xr.Dataset) -> pd.DataFrame:
    """The summary ``rsa-bias spectral`` prints: when each frequency is learned.

    Parameters
    ----------
    results : dict of str to xarray.Dataset, or xarray.Dataset
        :func:`run_spectral_config`'s results (``"spectral"``) or :func:`run_spectral`'s
        dataset.

    Returns
    -------
    pandas.DataFrame
        One row per amplitude setting and frequency: ``amplitude`` (``A_i``),
        ``median_first_step`` (:func:`median_first_step` over seeds: NaN when half or more
        never reach the threshold), ``fraction_reached`` (of the seeds), ``final_median``
        (median normalised amplitude at the last step), and per setting (repeated on its
        rows) :func:`frequency_order`'s ``spearman``, ``monotone`` and ``n_learned``.
    """
    ds = results["spectral"] if isinstance(results, dict) else results
    first = ds.first_step.transpose("setting", "seed", "frequency").values
    med = median_first_step(first, axis=1)
    final = ds.normalised_amplitude.isel(step=-1).median("seed") \
        .transpose("setting", "frequency").values
    rows = [{"setting": str(setting), "frequency": int(k),
             "amplitude": float(ds.amplitude.values[i, j]),
             "median_first_step": float(med[i, j]),
             "fraction_reached": float(np.isfinite(first[i, :, j]).mean()),
             "final_median": float(final[i, j])}
            for i, setting in enumerate(ds.setting.values)
            for j, k in enumerate(ds.frequency.values)]
    table = pd.DataFrame(rows)
    return table.merge(frequency_order(table), on="setting", how="left")


def frequency_order(table: pd.DataFrame) -> pd.DataFrame:
    """Whether the median first step increases with frequency, per amplitude setting.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``setting``, ``frequency`` and ``median_first_step`` (as
        :func:`spectral_table` builds them).

    Returns
    -------
    pandas.DataFrame
        One row per setting: ``spearman`` (rho of the median step with frequency, a
        never-reached median ranked last; NaN when the medians are all equal),
        ``monotone`` (the medians never decrease as the frequency rises, never-reached
        counted as latest) and ``n_learned`` (the frequencies whose median step is finite:
        at least half the seeds reach the threshold).
    """
    from scipy.stats import spearmanr

    rows = []
    for setting, part in table.groupby("setting", sort=False):
        part = part.sort_values("frequency")
        med = part.median_first_step.fillna(np.inf).to_numpy()
        ranks = pd.Series(med).rank().to_numpy()
        rho = spearmanr(part.frequency.to_numpy(), ranks)[0] \
            if len(np.unique(ranks)) > 1 else np.nan
        rows.append({"setting": setting, "spearman": float(rho),
                     "monotone": bool(np.all(med[1:] >= med[:-1])),
                     "n_learned": int(np.isfinite(med).sum())})
    return pd.DataFrame(rows)


def run_spectral_config(out_dir: str | Path, *, config: str | Path | SpectralConfig,
                        progress: bool = True, figures: bool = True
                        ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """Run the spectral-bias experiment of a config into ``out_dir``.

    ``spectral.nc`` (:func:`rsa_bias.store.write_results`) and the figure are each written
    to a temporary file in ``out_dir`` and renamed over their name (``os.replace``), so an
    interrupted run never leaves a half-written file.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for ``spectral.nc`` and ``spectral.png`` (created if missing).
    config : str, pathlib.Path or SpectralConfig
        The config (a path is read with
        :func:`~rsa_bias.config.spectral.load_spectral_config`).
    progress : bool, default True
        Show a progress bar.
    figures : bool, default True
        Draw the figure.

    Returns
    -------
    results : dict of str to xarray.Dataset
        ``"spectral"``: :func:`run_spectral`'s dataset.
    paths : dict of str to pathlib.Path
        Every file written (``"spectral"``, and ``"spectral_figure"`` with figures).
    """
    from rsa_bias.store import write_results

    cfg = config if isinstance(config, SpectralConfig) else load_spectral_config(config)
    out = Path(out_dir)
    ds = run_spectral(cfg, progress=progress)
    paths = {"spectral": write_results(ds, out / SPECTRAL_FILE)}
    if figures:
        from rsa_bias.plotting.spectral import save_spectral_figure

        paths["spectral_figure"] = save_spectral_figure(ds, out)
    return {"spectral": ds}, paths
