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

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count, check_flag, numeric_values
from rsa_bias.analysis._inputs import check_finite
from rsa_bias.analysis.features import _streamed_variance as streamed
from rsa_bias.analysis.features._labels import (
    feature_design,
    feature_names_of,
    labelled_activation,
    map_over_extra_dims,
    numeric_codes,
    split_mask,
)
from rsa_bias.analysis.features.subspaces import _caller_stacklevel
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
        A feature is constant on the fitting split (it explains nothing); arrays that are
        not 2-D, rows of ``phi`` and ``f`` (or units, or columns, of fit and eval) that do not
        match, group indices outside ``0..n_columns-1``; complex, NaN/inf or empty values.

    Warns
    -----
    RuntimeWarning
        ``phi_eval`` is constant over the evaluation stimuli (a dead layer): there is no
        variance to explain, and ``r2``, ``r2_joint``, ``explained`` and ``explained_joint``
        are NaN (``total`` is still reported).

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
    phi_fit, f_fit, phi_eval, f_eval, groups = _checked_arrays(phi_fit, f_fit, phi_eval,
                                                               f_eval, groups)
    out = _kernel(phi_fit, f_fit, phi_eval, f_eval, groups)
    if out.pop("constant"):
        warnings.warn("phi_eval is constant over the evaluation stimuli (every unit): it has "
                      "no variance to explain, so r2, r2_joint, explained and explained_joint "
                      "are NaN", RuntimeWarning, stacklevel=_caller_stacklevel())
    return out


def _checked_arrays(phi_fit, f_fit, phi_eval, f_eval, groups):
    """The four arrays as 2-D float64 with matching rows and columns, and valid groups."""
    arrays = {name: numeric_values(v, name) for name, v in
              (("phi_fit", phi_fit), ("f_fit", f_fit), ("phi_eval", phi_eval),
               ("f_eval", f_eval))}
    for name, v in arrays.items():
        if v.ndim != 2:
            raise ValueError(f"{name} has shape {v.shape}; it must be 2-D (stimulus, "
                             f"{'unit' if name.startswith('phi') else 'column'}): reshape a "
                             "single feature with f[:, None]")
    for split in ("fit", "eval"):
        phi, f = arrays[f"phi_{split}"], arrays[f"f_{split}"]
        if phi.shape[0] != f.shape[0]:
            raise ValueError(f"phi_{split} has {phi.shape[0]} rows but f_{split} has "
                             f"{f.shape[0]}; each row is one stimulus in both")
    for kind, axis_name in (("phi", "units"), ("f", "columns")):
        a, b = arrays[f"{kind}_fit"].shape[1], arrays[f"{kind}_eval"].shape[1]
        if a != b:
            raise ValueError(f"{kind}_fit has {a} {axis_name} but {kind}_eval has {b}; the "
                             "fitting and evaluation stimuli need the same "
                             f"{axis_name}")
    n_cols = arrays["f_fit"].shape[1]
    if groups is None:
        groups = [[i] for i in range(n_cols)]
    checked = []
    for g, members in enumerate(groups):
        if isinstance(members, numbers.Integral | str):
            raise ValueError(f"groups[{g}] is {members!r}; each group is a list of column "
                             "indices, e.g. groups=[[0], [1, 2]]")
        cols = [check_count(c, f"groups[{g}] column index", minimum=0) for c in members]
        bad = [c for c in cols if c >= n_cols]
        if bad or not cols:
            raise ValueError(f"groups[{g}] holds {bad or 'no'} column indices; f_fit has "
                             f"{n_cols} columns (indices 0..{n_cols - 1})")
        checked.append(cols)
    return (arrays["phi_fit"], arrays["f_fit"], arrays["phi_eval"], arrays["f_eval"],
            checked)


def _kernel(phi_fit: np.ndarray, f_fit: np.ndarray, phi_eval: np.ndarray,
            f_eval: np.ndarray, groups: list[list[int]]) -> dict[str, np.ndarray]:
    """:func:`variance_explained_arrays` on checked arrays; ``constant`` flags an eval split
    without variance (whose R²s are then NaN)."""
    mu = phi_fit.mean(axis=0)
    fbar = f_fit.mean(axis=0)
    x_fit = f_fit - fbar
    x_eval = f_eval - fbar
    p_eval = phi_eval - mu
    total = float(np.einsum("ij,ij->", p_eval, p_eval))
    # Sufficient statistics: every fit and residual below needs only these
    # (n_columns x n_units) cross-products, never an (n x n_units) residual.
    a, b = x_fit.T @ (phi_fit - mu), x_eval.T @ p_eval  # X_fit' P_fit, X_eval' P_eval
    dead = not np.any(np.ptp(phi_eval, axis=0) > 0)  # nothing to explain: a dead layer
    return _from_statistics(a, b, x_fit.T @ x_fit, x_eval.T @ x_eval, total, dead, groups)


def _from_statistics(a: np.ndarray, b: np.ndarray, g_fit: np.ndarray, g_eval: np.ndarray,
                     total: float, dead: bool, groups: list[list[int]]) -> dict[str, np.ndarray]:
    """:func:`_kernel` from its sufficient statistics (or ``_streamed_variance``'s)."""
    constant = [i for i, g in enumerate(groups) if np.all(np.diag(g_fit)[list(g)] == 0)]
    if constant:
        raise ValueError(f"feature(s) {constant} are constant on the fitting split; they "
                         "explain nothing")
    if dead:
        nan = np.full(len(groups), np.nan)
        return {"r2": nan, "r2_joint": np.float64(np.nan), "explained": nan.copy(),
                "explained_joint": np.float64(np.nan), "total": np.float64(total),
                "constant": True}
    explained = np.array([_explained(a[g], b[g], g_fit[np.ix_(g, g)], g_eval[np.ix_(g, g)])
                          for g in map(list, groups)])
    w_joint = np.linalg.lstsq(g_fit, a, rcond=None)[0]
    explained_joint = float(2 * np.sum(w_joint * b) - np.sum(w_joint * (g_eval @ w_joint)))
    return {
        "r2": explained / total,
        "r2_joint": np.float64(explained_joint / total),
        "explained": explained,
        "explained_joint": np.float64(explained_joint),
        "total": np.float64(total),
        "constant": False,
    }


def _explained(a: np.ndarray, b: np.ndarray, g_fit: np.ndarray, g_eval: np.ndarray) -> float:
    """Eval-split sum of squares explained by the least-squares fit of one feature's columns:
    SSE = total - 2 <W, b> + <W, G_eval W>, so explained = total - SSE."""
    if a.shape[0] == 1:  # one column: a division, exactly as the paper's single-feature fit
        w = a / g_fit[0, 0]
    else:
        w = np.linalg.lstsq(g_fit, a, rcond=None)[0]
    return float(2 * np.sum(w * b) - np.sum(w * (g_eval @ w)))


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
    x : xarray.DataArray with dims ("stimulus", "unit", ...), or numpy.ndarray
        The layer's activations. Extra dims (``seed``, ``step``, ...) are looped over. Needs
        ``feature_<name>`` and ``split`` coords on ``stimulus`` unless ``stimuli`` supplies
        them. A numpy array (stimulus, unit) carries no labels: it needs ``stimuli``, and its
        rows are the stimulus ids ``0..n-1``. A Dask-backed (chunked) DataArray is streamed:
        two passes of reductions over its chunks, never loaded as a whole.
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
        Split where R² is measured. The same split as ``fit_split`` gives an in-sample fit
        (optimistic: least squares never does worse than the mean there); ``None`` uses all
        stimuli.
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
        indicators). All but ``total`` are NaN in a slice where the layer is constant over
        the ``eval_split`` stimuli.

    Raises
    ------
    ValueError
        Missing feature or split coords, an empty or string ``features``, a non-bool
        ``categorical``, a split with fewer than 2 stimuli, a feature constant on the
        ``fit_split``, or complex, NaN/inf or empty activations.

    Warns
    -----
    RuntimeWarning
        Once, naming the slices (e.g. ``seed=0, step=10``) where the layer is constant over
        the ``eval_split`` stimuli (a dead layer): there is no variance to explain there.

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
    if categorical is not None:
        categorical = check_flag(categorical, "categorical")
    activation = labelled_activation(streamed.as_lazy_labelled(x), stimuli)
    if "unit" not in activation.dims:
        raise ValueError(f"activation has dims {activation.dims}; a 'unit' dim is required")
    names = feature_names_of(activation, features)
    fit, ev = split_mask(activation, fit_split), split_mask(activation, eval_split)
    fvals = np.stack([numeric_codes(activation[f"feature_{n}"].values) for n in names],
                     axis=1)
    check_finite(fvals, "feature values")
    design, groups, cat = feature_design(fvals, names, categorical)
    trailing = {"r2": ("feature",), "explained": ("feature",), "r2_joint": (),
                "explained_joint": (), "total": (), "constant": ()}
    if streamed.is_dask_backed(activation):  # chunked input: streamed, never loaded whole
        ds = map_over_extra_dims(activation, lambda phi: _from_statistics(
            **streamed.streamed_statistics(phi, fit, ev, design), groups=groups),
            trailing, {"feature": names}, lazy=True)
    else:
        ds = map_over_extra_dims(
            activation, lambda phi: _kernel(phi[fit], design[fit], phi[ev], design[ev], groups),
            trailing, {"feature": names})
    constant = ds["constant"].values.astype(bool)
    ds = ds.drop_vars("constant")
    if constant.any():
        _warn_constant(ds, constant, eval_split)
    ds.attrs.update(result_attrs("feature_variance_explained", features=names,
                                 fit_split=fit_split, eval_split=eval_split,
                                 categorical=categorical, categorical_features=",".join(cat)))
    return ds


def _warn_constant(ds: xr.Dataset, constant: np.ndarray, eval_split: str | None) -> None:
    """One RuntimeWarning naming the slices (extra-dim coords) of a constant layer."""
    dims = list(ds["total"].dims)
    where = [", ".join(f"{d}={ds[d].values[i].tolist()!r}" if d in ds.coords else f"{d}[{i}]"
                       for d, i in zip(dims, idx, strict=True))
             for idx in np.argwhere(constant)[:3]] if dims else []
    more = int(constant.sum()) - len(where)
    at = f" at {'; '.join(where)}" + (f" (and {more} more slices)" if more else "") \
        if where else ""
    split = "all stimuli" if eval_split is None else f"the eval_split {eval_split!r} stimuli"
    warnings.warn(f"the activations are constant over {split}{at} (a dead layer?): no "
                  "variance to explain, so r2, r2_joint, explained and explained_joint are "
                  "NaN there", RuntimeWarning, stacklevel=_caller_stacklevel())


@legacy_call(renamed={"ds": "result"})
def normalise_by_final(result: xr.Dataset, *, step_dim: str = "step") -> xr.Dataset:
    """Feature variance explained over training, normalised by the final snapshot's total.

    A variant of :func:`feature_variance_explained` for curves over training: the explained
    variance at every step is divided by ``total`` at the final ``step`` (the largest step
    value, wherever it lies in the order), so a curve shows absolute growth of feature
    variance rather than shares of a changing total. Values can exceed 1 early in training
    when the layer's total variance later shrinks.

    Parameters
    ----------
    result : xarray.Dataset
        The result of :func:`feature_variance_explained` over a ``step_dim`` dim (its
        ``explained``, ``explained_joint`` and ``total`` variables are used).
    step_dim : str, default "step"
        Name of the training-step dim; the entry with the largest coordinate value is the
        final snapshot (the last entry when the dim has no coordinate).

    Returns
    -------
    xarray.Dataset
        ``r2_final_norm(feature, ...)`` and ``r2_joint_final_norm(...)``: ``explained`` and
        ``explained_joint`` divided by ``total`` at the final step; NaN where that total is
        0 (a layer constant at the final step), with a RuntimeWarning.

    Raises
    ------
    ValueError
        ``result`` is not a Dataset with ``explained``, ``explained_joint`` and ``total``
        (e.g. only its ``r2``), or has no ``step_dim`` dim.
    """
    needed = ("explained", "explained_joint", "total")
    held = list(map(str, result.data_vars)) if isinstance(result, xr.Dataset) else None
    if held is None or any(v not in held for v in needed):
        got = (f"a Dataset with {held}" if held is not None else
               f"a {type(result).__name__}" + (f" {result.name!r}" if getattr(
                   result, "name", None) is not None else ""))
        raise ValueError(f"normalise_by_final needs the whole Dataset of "
                         f"feature_variance_explained (variables {list(needed)}); got {got}")
    if step_dim not in result.dims:
        raise ValueError(f"no {step_dim!r} dim to normalise over (dims: {tuple(result.dims)})")
    final = (int(np.argmax(result[step_dim].values)) if step_dim in result.coords
             else result.sizes[step_dim] - 1)
    final_total = result["total"].isel({step_dim: final}, drop=True)
    zero = final_total == 0
    if bool(zero.any()):
        warnings.warn(f"the total variance at the final {step_dim} is 0 in "
                      f"{int(zero.sum())} of {zero.size} slices (a constant layer): the "
                      "normalised R²s are NaN there", RuntimeWarning,
                      stacklevel=_caller_stacklevel())
        final_total = final_total.where(~zero)
    return xr.Dataset({
        "r2_final_norm": result["explained"] / final_total,
        "r2_joint_final_norm": result["explained_joint"] / final_total,
    }, attrs=result_attrs("normalise_by_final", step_dim=step_dim))
