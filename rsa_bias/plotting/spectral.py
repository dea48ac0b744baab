"""The figure of the spectral-bias experiment (Rahaman et al. 2019, Fig. 1): the network's
spectrum over training, normalised by the target's, as a frequency x iteration heatmap."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bias.plotting._save import save_figure

SPECTRAL_FIGURE = "spectral.png"
CMAP = "viridis"


def _dataset(results: dict[str, xr.Dataset] | xr.Dataset) -> xr.Dataset:
    ds = results["spectral"] if isinstance(results, dict) else results
    missing = [v for v in ("normalised_amplitude", "first_step") if v not in ds]
    if missing:
        raise ValueError(f"not a spectral-bias result: it lacks {missing} (make one with "
                         "rsa_bias.experiments.spectral.run_spectral)")
    return ds


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around increasing centres (half-way between them, mirrored at the ends)."""
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _panel(ax, part: xr.Dataset, threshold: float):
    """One setting's heatmap (mean over seeds, clipped to [0, 1]) and its median steps."""
    grid = part.normalised_amplitude.mean("seed").transpose("frequency", "step")
    steps, ks = part.step.values, part.frequency.values
    mesh = ax.pcolormesh(_edges(steps), _edges(ks), np.clip(grid.values, 0.0, 1.0),
                         cmap=CMAP, vmin=0.0, vmax=1.0, shading="flat")
    first = part.first_step.transpose("seed", "frequency").values
    med = np.median(np.where(np.isnan(first), np.inf, first), axis=0)
    shown = np.isfinite(med)
    ax.plot(med[shown], ks[shown], "o", mfc="white", mec="black", ms=4,
            label=f"median first step reaching {threshold:g}")
    ax.set_yticks(ks)
    ax.set_ylabel("frequency k")
    return mesh


def plot_spectral(results: dict[str, xr.Dataset] | xr.Dataset):
    """The normalised spectrum ``|f_hat(k_i)| / A_i`` over training, one panel per setting.

    Parameters
    ----------
    results : dict of str to xarray.Dataset, or xarray.Dataset
        :func:`rsa_bias.experiments.spectral.run_spectral_config`'s results
        (``"spectral"``) or :func:`~rsa_bias.experiments.spectral.run_spectral`'s dataset.

    Returns
    -------
    matplotlib.figure.Figure
        One row per amplitude setting: frequency (y) x training iteration (x), the mean
        normalised amplitude over seeds (colour clipped to [0, 1], as in the paper), with
        white dots at each frequency's median first step reaching the threshold.
    """
    ds = _dataset(results)
    threshold = float(ds.attrs.get("threshold", 0.9))
    settings = list(ds.setting.values)
    fig, axes = plt.subplots(len(settings), 1, squeeze=False, sharex=True,
                             figsize=(7.0, 2.6 * len(settings) + 0.6))
    for ax, setting in zip(axes[:, 0], settings, strict=True):
        mesh = _panel(ax, ds.sel(setting=setting), threshold)
        ax.set_title(f"{setting} amplitudes ({ds.sizes['seed']} seeds)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("training iteration")
    fig.colorbar(mesh, ax=axes[:, 0].tolist(), label="|f̂(k)| / A  (mean over seeds)")
    fig.suptitle("spectral bias: low frequencies are learned first")
    return fig


def save_spectral_figure(results: dict[str, xr.Dataset] | xr.Dataset,
                         out_dir: str | Path) -> Path:
    """Draw :func:`plot_spectral` into ``out_dir/spectral.png``.

    Parameters
    ----------
    results : dict of str to xarray.Dataset, or xarray.Dataset
        As :func:`plot_spectral` takes them.
    out_dir : str or pathlib.Path
        Folder for the figure (created if missing).

    Returns
    -------
    pathlib.Path
        The written PNG.
    """
    return save_figure(plot_spectral(results), Path(out_dir) / SPECTRAL_FIGURE,
                       bbox_inches="tight")
