"""Feature variance explained (Lampinen, Chan & Hermann 2024).

For a representation φ(I) and a feature f(I): centre φ by its mean over the
fitting split, fit the whole layer on the feature,
``W_f = argmin_W Σ_fit ||W f(I) − φ(I)||²`` (an encoding model of the layer, not
a probe), and report on the evaluation split

    R²_f = 1 − Σ_eval ||W_f f(I) − φ(I)||² / Σ_eval ||φ(I)||².

The feature is centred on the fitting split as well, which adds the intercept a
least-squares fit needs; for the exactly balanced features of
:mod:`rsa_bias.tasks` the feature mean is already 0 in ±1 coding, so this is the
paper's fit. ``joint`` regresses the layer on all features at once. A feature with
more than two values (a class id) enters as indicator columns fitted together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias.analysis._inputs import check_finite
from rsa_bias.analysis.features._labels import (
    attach_stimulus_coords,
    feature_names_of,
    map_over_extra_dims,
    split_mask,
)
from rsa_bias.provenance import result_attrs


@legacy_call(positional=("groups",))
def variance_explained_arrays(phi_fit: np.ndarray, f_fit: np.ndarray, phi_eval: np.ndarray,
                              f_eval: np.ndarray, *,
                              groups: Sequence[Sequence[int]] | None = None
                              ) -> dict[str, np.ndarray]:
    """Feature variance explained on plain arrays, per feature and jointly.

    The kernel of :func:`feature_variance_explained`. The representation and the feature
    columns are centred by their means over the fitting split; each feature's columns, and all
    columns jointly, are fitted to the representation by least squares on the fitting split,
    and the variance they explain is measured on the evaluation split (the formula is in the
    module docstring). Only ``(n_columns, n_units)`` cross-products are formed, never an
    ``(n, n_units)`` residual.

    Parameters
    ----------
    phi_fit : numpy.ndarray, shape (n_fit, n_units)
        Representation of the fitting stimuli (where ``W`` is fitted).
    f_fit : numpy.ndarray, shape (n_fit, n_columns)
        Feature values (design columns) of the fitting stimuli.
    phi_eval : numpy.ndarray, shape (n_eval, n_units)
        Representation of the evaluation stimuli (where R² is measured).
    f_eval : numpy.ndarray, shape (n_eval, n_columns)
        Feature values of the evaluation stimuli, in the columns of ``f_fit``.
    groups : sequence of sequence of int, optional
        Column indices of each feature; default one column per feature. A categorical
        feature with k values enters as its k - 1 indicator columns, fitted together.

    Returns
    -------
    dict of str to numpy.ndarray
        ``r2`` ``(n_features,)``, ``r2_joint`` (scalar), ``explained`` ``(n_features,)`` and
        ``explained_joint`` (sums of squares explained on the eval split), and ``total``
        (Σ_eval ||φ||², centred by the fitting mean). ``r2 = explained / total``.

    Raises
    ------
    ValueError
        A feature is constant on the fitting split (it explains nothing).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> f = rng.choice([-1.0, 1.0], size=(200, 1))
    >>> phi = f @ np.ones((1, 5)) + rng.normal(size=(200, 5))
    >>> out = variance_explained_arrays(phi[:100], f[:100], phi[100:], f[100:])
    >>> round(float(out["r2"][0]), 1), round(float(out["r2_joint"]), 1)
    (0.5, 0.5)
    """
    if groups is None:
        groups = [[i] for i in range(f_fit.shape[1])]
    mu = phi_fit.mean(axis=0)
    fbar = f_fit.mean(axis=0)
    x_fit = f_fit - fbar
    x_eval = f_eval - fbar
    p_eval = phi_eval - mu
    total = float(np.einsum("ij,ij->", p_eval, p_eval))
    # Sufficient statistics: every fit and residual below needs only these
    # (n_columns x n_units) cross-products, never an (n x n_units) residual.
    a = x_fit.T @ (phi_fit - mu)            # X_fit' P_fit
    b = x_eval.T @ p_eval                   # X_eval' P_eval
    g_fit = x_fit.T @ x_fit
    g_eval = x_eval.T @ x_eval
    constant = [i for i, g in enumerate(groups) if np.all(np.diag(g_fit)[list(g)] == 0)]
    if constant:
        raise ValueError(f"feature(s) {constant} are constant on the fitting split; they "
                         "explain nothing")
    explained = np.array([_explained(a[g], b[g], g_fit[np.ix_(g, g)], g_eval[np.ix_(g, g)])
                          for g in map(list, groups)])
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


def _explained(a: np.ndarray, b: np.ndarray, g_fit: np.ndarray, g_eval: np.ndarray) -> float:
    """Eval-split sum of squares explained by the least-squares fit of one feature's columns:
    SSE = total - 2 <W, b> + <W, G_eval W>, so explained = total - SSE."""
    if a.shape[0] == 1:  # one column: a division, exactly as the paper's single-feature fit
        w = a / g_fit[0, 0]
    else:
        w = np.linalg.lstsq(g_fit, a, rcond=None)[0]
    return float(2 * np.sum(w * b) - np.sum(w * (g_eval @ w)))


def _design(fvals: np.ndarray, names: list[str], categorical: bool | None
            ) -> tuple[np.ndarray, list[list[int]], list[str]]:
    """Design columns and their groups: a categorical feature becomes indicators of all but
    its first value. ``None``: categorical when its values are integers with > 2 levels."""
    cols, groups, cat = [], [], []
    for j, name in enumerate(names):
        v = fvals[:, j]
        levels = np.unique(v)
        is_cat = categorical if categorical is not None else (
            levels.size > 2 and np.all(levels == np.round(levels)))
        block = (v[:, None] == levels[None, 1:]).astype(float) if is_cat and levels.size > 2 \
            else v[:, None]
        groups.append(list(range(len(cols), len(cols) + block.shape[1])))
        cols.extend(block.T)
        if is_cat:
            cat.append(name)
    return np.stack(cols, axis=1), groups, cat


@legacy_call(positional=("features",), renamed={"activation": "x"})
def feature_variance_explained(x: xr.DataArray, *, stimuli: xr.Dataset | None = None,
                               features: Sequence[str] | None = None, fit_split: str = "val",
                               eval_split: str = "test",
                               categorical: bool | None = None) -> xr.Dataset:
    """Variance of a layer explained by each feature, and by all features jointly.

    Lampinen, Chan & Hermann's (2024) metric: the layer is regressed on each feature on the
    ``fit_split`` stimuli (an encoding model of the layer, not a probe) and R² is measured on
    the ``eval_split`` stimuli; ``r2_joint`` regresses the layer on all features at once (see
    the module docstring for the formula and the centring).

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", "unit", ...)
        The layer's activations. Extra dims (``seed``, ``step``, ...) are looped over. Needs
        ``feature_<name>`` and ``split`` coords on ``stimulus`` unless ``stimuli`` supplies
        them.
    stimuli : xarray.Dataset, optional
        Stimulus set (``feature_<name>`` coords on its ``stimulus`` dim) to take the feature
        coords from, aligned to ``x`` by stimulus id; here also its ``split`` coord. Default:
        the coords already on ``x``.
    features : sequence of str, optional
        Names of the features to analyse; default all listed ones (``attrs["feature_names"]``,
        else every ``feature_<name>`` coord).
    fit_split : str, default "val"
        Split (value of the ``split`` coord) where ``W`` is fitted.
    eval_split : str, default "test"
        Split where R² is measured. Use the same split name as ``fit_split`` for an
        in-sample fit.
    categorical : bool, optional
        How a feature with more than two values (a colour or shape class id) enters: as
        indicator columns of its values fitted together (``True``), or as one numeric column
        (``False``, which imposes an order on the values and understates their share).
        Default ``None``: categorical for integer values with > 2 levels. Binary features
        give the same R² either way.

    Returns
    -------
    xarray.Dataset
        ``r2(feature, ...)``, ``r2_joint(...)``, ``explained(feature, ...)``,
        ``explained_joint(...)`` and ``total(...)``, over the extra dims of ``x``; attrs
        record the parameters and ``categorical_features`` (the features entered as
        indicators).

    See Also
    --------
    variance_shares : the in-sample share of each feature subspace (one-hot for any level
        count), which equals the in-sample R² for balanced binary features.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> f = rng.integers(0, 2, 400)
    >>> phi = np.outer(2 * f - 1, np.ones(10)) + rng.normal(size=(400, 10))
    >>> act = xr.DataArray(phi, dims=("stimulus", "unit"), coords={"feature_a": ("stimulus", f),
    ...       "split": ("stimulus", np.where(np.arange(400) % 2, "val", "test"))})
    >>> round(float(feature_variance_explained(act).r2.sel(feature="a")), 1)
    0.5
    """
    activation = attach_stimulus_coords(x, stimuli)
    if "unit" not in activation.dims:
        raise ValueError(f"activation has dims {activation.dims}; a 'unit' dim is required")
    names = feature_names_of(activation, features)
    fit, ev = split_mask(activation, fit_split), split_mask(activation, eval_split)
    fvals = np.stack([activation[f"feature_{n}"].values for n in names], axis=1).astype(float)
    check_finite(fvals, "feature values")
    design, groups, cat = _design(fvals, names, categorical)
    trailing = {"r2": ("feature",), "explained": ("feature",), "r2_joint": (),
                "explained_joint": (), "total": ()}
    ds = map_over_extra_dims(
        activation,
        lambda phi: variance_explained_arrays(phi[fit], design[fit], phi[ev], design[ev],
                                              groups=groups),
        trailing, {"feature": names})
    ds.attrs.update(result_attrs("feature_variance_explained", features=names,
                                 fit_split=fit_split, eval_split=eval_split,
                                 categorical=categorical, categorical_features=",".join(cat)))
    return ds


@legacy_call(renamed={"ds": "result"})
def normalise_by_final(result: xr.Dataset, *, step_dim: str = "step") -> xr.Dataset:
    """Feature variance explained over training, normalised by the final snapshot's total.

    A variant of :func:`feature_variance_explained` for curves over training: the explained
    variance at every step is divided by ``total`` at the last ``step``, so a curve shows
    absolute growth of feature variance rather than shares of a changing total. Values can
    exceed 1 early in training when the layer's total variance later shrinks.

    Parameters
    ----------
    result : xarray.Dataset
        The result of :func:`feature_variance_explained` over a ``step_dim`` dim (its
        ``explained``, ``explained_joint`` and ``total`` variables are used).
    step_dim : str, default "step"
        Name of the training-step dim; its last entry is the final snapshot.

    Returns
    -------
    xarray.Dataset
        ``r2_final_norm(feature, ...)`` and ``r2_joint_final_norm(...)``: ``explained`` and
        ``explained_joint`` divided by ``total`` at the last ``step_dim`` entry.

    Raises
    ------
    ValueError
        ``result`` has no ``step_dim`` dim.
    """
    if step_dim not in result.dims:
        raise ValueError(f"no {step_dim!r} dim to normalise over (dims: {tuple(result.dims)})")
    final_total = result["total"].isel({step_dim: -1}, drop=True)
    return xr.Dataset({
        "r2_final_norm": result["explained"] / final_total,
        "r2_joint_final_norm": result["explained_joint"] / final_total,
    }, attrs=result_attrs("normalise_by_final", step_dim=step_dim))
