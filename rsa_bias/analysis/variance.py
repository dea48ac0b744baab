"""Feature variance explained (Lampinen, Chan & Hermann 2024).

For a representation φ(I) and a feature f(I): centre φ by its mean over the
fitting split, fit the whole layer on the feature,
``W_f = argmin_W Σ_fit ||W f(I) − φ(I)||²`` (an encoding model of the layer, not
a probe), and report on the evaluation split

    R²_f = 1 − Σ_eval ||W_f f(I) − φ(I)||² / Σ_eval ||φ(I)||².

The feature is centred on the fitting split as well, which adds the intercept a
least-squares fit needs; for the exactly balanced features of
:mod:`rsa_bias.tasks` the feature mean is already 0 in ±1 coding, so this is the
paper's fit. ``joint`` regresses the layer on all features at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias.analysis._labels import (
    attach_stimulus_coords,
    check_finite,
    feature_names_of,
    map_over_extra_dims,
    split_mask,
)


def variance_explained_arrays(phi_fit: np.ndarray, f_fit: np.ndarray, phi_eval: np.ndarray,
                              f_eval: np.ndarray) -> dict[str, np.ndarray]:
    """Kernel on plain arrays.

    Parameters
    ----------
    phi_fit, phi_eval : ``(n_fit, n_units)``, ``(n_eval, n_units)`` representations.
    f_fit, f_eval : ``(n_fit, n_features)``, ``(n_eval, n_features)`` feature values.

    Returns
    -------
    dict with ``r2`` ``(n_features,)``, ``r2_joint`` (scalar),
    ``explained`` ``(n_features,)`` and ``explained_joint`` (sums of squares
    explained on the eval split), and ``total`` (Σ_eval ||φ||², centred by the
    fitting mean).
    """
    mu = phi_fit.mean(axis=0)
    fbar = f_fit.mean(axis=0)
    x_fit = f_fit - fbar
    x_eval = f_eval - fbar
    p_eval = phi_eval - mu
    total = float(np.einsum("ij,ij->", p_eval, p_eval))
    # Sufficient statistics: every fit and residual below needs only these
    # (n_features x n_units) cross-products, never an (n x n_units) residual.
    a = x_fit.T @ (phi_fit - mu)            # X_fit' P_fit
    b = x_eval.T @ p_eval                   # X_eval' P_eval
    g_fit = x_fit.T @ x_fit
    g_eval = x_eval.T @ x_eval
    diag = np.diag(g_fit)
    if np.any(diag == 0):
        raise ValueError(f"feature(s) {np.flatnonzero(diag == 0).tolist()} are constant on the "
                         "fitting split; they explain nothing")
    w = a / diag[:, None]                   # one-feature fits, one row per feature
    # SSE = total - 2 <w, b> + |w|^2 x_eval'x_eval  =>  explained = total - SSE
    explained = 2 * np.sum(w * b, axis=1) - np.sum(w**2, axis=1) * np.diag(g_eval)
    w_joint = np.linalg.lstsq(g_fit, a, rcond=None)[0]
    explained_joint = float(2 * np.sum(w_joint * b) - np.sum(w_joint * (g_eval @ w_joint)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "r2": explained / total,
            "r2_joint": np.float64(explained_joint / total),
            "explained": explained,
            "explained_joint": np.float64(explained_joint),
            "total": np.float64(total),
        }


def feature_variance_explained(activation: xr.DataArray, features: Sequence[str] | None = None,
                               *, stimuli: xr.Dataset | None = None, fit_split: str = "val",
                               eval_split: str = "test") -> xr.Dataset:
    """Variance of a layer explained by each feature, and by all features jointly.

    Parameters
    ----------
    activation : xarray.DataArray with dims ("stimulus", "unit", ...)
        Extra dims (``seed``, ``step``, ...) are looped over. Needs
        ``feature_<name>`` and ``split`` coords on ``stimulus`` unless
        ``stimuli`` supplies them.
    features : names of the features; default all (``attrs["feature_names"]``).
    stimuli : stimulus set to take feature/split coords from, aligned by id.
    fit_split, eval_split : where W is fitted and where R² is measured. Use the
        same split name for an in-sample fit.

    Returns
    -------
    xarray.Dataset
        ``r2(feature, ...)``, ``r2_joint(...)``, ``explained(feature, ...)``,
        ``explained_joint(...)`` and ``total(...)``, over the extra dims.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.integers(0, 2, 400)
    >>> phi = np.outer(2 * f - 1, np.ones(10)) + rng.normal(size=(400, 10))
    >>> act = xr.DataArray(phi, dims=("stimulus", "unit"), coords={"feature_a": ("stimulus", f),
    ...       "split": ("stimulus", np.where(np.arange(400) % 2, "val", "test"))})
    >>> round(float(feature_variance_explained(act).r2.sel(feature="a")), 1)
    0.5
    """
    activation = attach_stimulus_coords(activation, stimuli)
    if "unit" not in activation.dims:
        raise ValueError(f"activation has dims {activation.dims}; a 'unit' dim is required")
    names = feature_names_of(activation, features)
    fit, ev = split_mask(activation, fit_split), split_mask(activation, eval_split)
    fvals = np.stack([activation[f"feature_{n}"].values for n in names], axis=1).astype(float)
    check_finite(fvals, "feature values")
    trailing = {"r2": ("feature",), "explained": ("feature",), "r2_joint": (),
                "explained_joint": (), "total": ()}
    ds = map_over_extra_dims(
        activation,
        lambda phi: variance_explained_arrays(phi[fit], fvals[fit], phi[ev], fvals[ev]),
        trailing, {"feature": names})
    ds.attrs.update(method="feature_variance_explained", fit_split=fit_split,
                    eval_split=eval_split)
    return ds


def normalise_by_final(ds: xr.Dataset, *, step_dim: str = "step") -> xr.Dataset:
    """Variant for curves over training: explained variance / final snapshot's total.

    Returns ``r2_final_norm(feature, ...)`` and ``r2_joint_final_norm(...)`` where
    the denominator is ``total`` at the last ``step``, so a curve shows absolute
    growth of feature variance rather than shares of a changing total. Values can
    exceed 1 early in training when the layer's total variance later shrinks.
    """
    if step_dim not in ds.dims:
        raise ValueError(f"no {step_dim!r} dim to normalise over (dims: {tuple(ds.dims)})")
    final_total = ds["total"].isel({step_dim: -1}, drop=True)
    return xr.Dataset({
        "r2_final_norm": ds["explained"] / final_total,
        "r2_joint_final_norm": ds["explained_joint"] / final_total,
    })
