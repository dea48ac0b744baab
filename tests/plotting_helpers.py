"""Inputs and Axes readers shared by the plotting tests (the Agg backend, seeded, figures
closed after each test)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LAYERS = ["hidden_0", "hidden_1", "hidden_2"]
FEATURES = ["easy", "hard"]
SEEDS = [0, 1, 2]




# --- helpers ---------------------------------------------------------------------------------


def make_results() -> xr.Dataset:
    """A complexity-bias results Dataset with the dims run_complexity_bias gives."""
    rng = np.random.default_rng(0)
    nl, ns, nf, npc = len(LAYERS), len(SEEDS), len(FEATURES), 4
    coords = {"layer": LAYERS, "seed": SEEDS, "step": [0, 10, 20], "feature": FEATURES,
              "pc": np.arange(1, npc + 1), "split": ["val", "test"],
              "eval_step": [0, 5, 10, 20]}
    r2_dims = ("layer", "seed", "step", "feature")
    return xr.Dataset({
        "r2": (r2_dims, rng.uniform(0.05, 0.6, (nl, ns, 3, nf))),
        "r2_joint": (("layer", "seed", "step"), rng.uniform(0.6, 0.9, (nl, ns, 3))),
        "r2_final_norm": (r2_dims, rng.uniform(0.0, 0.5, (nl, ns, 3, nf))),
        "variance_fraction": (("layer", "seed", "pc"), rng.dirichlet(np.ones(npc), (nl, ns))),
        "feature_corr": (("layer", "seed", "pc", "feature"), rng.uniform(0, 1, (nl, ns, npc, nf))),
        # val and test differ by 0.5 (test on top), so drawing the wrong split is visible
        "accuracy": (("seed", "split", "feature", "eval_step"),
                     rng.uniform(0.0, 0.4, (ns, 2, nf, 4)) + np.array([0.0, 0.5])[:, None, None]),
    }, coords=coords)


def make_rdm(cats: list[str], seed: int = 0, ids=None) -> xr.DataArray:
    """A symmetric RDM with distinct off-diagonal values, categories on both stimulus dims."""
    n = len(cats)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 2.0, (n, n))
    values = x + x.T
    np.fill_diagonal(values, 0)
    ids = np.arange(100, 100 + n) if ids is None else np.asarray(ids)
    return xr.DataArray(values, dims=("stimulus_i", "stimulus_j"),
                        coords={"stimulus_i": ids, "stimulus_j": ids,
                                "category_i": ("stimulus_i", cats),
                                "category_j": ("stimulus_j", cats)},
                        attrs={"method": "correlation"})


def grouped_order(cats) -> np.ndarray:
    """The stable grouping permutation, written out by hand."""
    groups = list(dict.fromkeys(cats))
    return np.array([i for g in groups for i, c in enumerate(cats) if c == g])


def percentiles_of(values: np.ndarray) -> np.ndarray:
    """Percentile of each off-diagonal value among the n(n-1)/2 distinct pairs (diagonal 0)."""
    n = len(values)
    iu = np.triu_indices(n, 1)
    order = np.argsort(np.argsort(values[iu]))
    pct = np.zeros_like(values)
    pct[iu] = 100 * (order + 0.5) / iu[0].size
    return pct + pct.T


def tick_labels(ax, axis: str = "x") -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in labels]


def bar_patches(ax) -> list[Rectangle]:
    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]


def data_lines(ax):
    """Lines that hold data (seaborn's legend proxies are empty)."""
    return [ln for ln in ax.lines if len(ln.get_xdata())]


def lines_by_legend(ax) -> dict[str, object]:
    """Data line of each legend entry, matched by colour."""
    handles, labels = ax.get_legend_handles_labels()
    out = {}
    for h, lb in zip(handles, labels, strict=True):
        same = [ln for ln in data_lines(ax) if to_rgba(ln.get_color()) == to_rgba(h.get_color())]
        assert len(same) == 1, lb
        out[lb] = same[0]
    return out


def make_attribution(shares: dict[str, float], residual: float) -> xr.Dataset:
    return xr.Dataset({"share": ("feature", list(shares.values())), "residual": residual},
                      coords={"feature": list(shares)})
