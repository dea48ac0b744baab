"""The unit-neuron alignment score: how one-to-one a model's units map onto single neurons.

Definition (Higgins et al. 2021, "Unsupervised deep learning identifies semantic
disentanglement in single inferotemporal face patch neurons", Nature Communications, Methods:
"alignment score"; built on the DCI disentanglement score of Eastwood & Williams 2018, "A
framework for the quantitative evaluation of disentangled representations", ICLR):

1. Units and neurons are z-scored over stimuli (constant units are dropped), so weights are
   comparable across units.
2. Each neuron j is regressed on all units by a lasso, its penalty chosen by
   cross-validation (``sklearn.linear_model.LassoCV``); ``R[i, j] = |w_ij|``.
3. Each neuron's weights become a distribution over units, ``p_ij = R_ij / sum_i R_ij``, and
   its score is ``1 - H(p_.j) / log(n_units)`` (1: one unit explains the neuron; 0: all units
   equally).
4. Neurons are weighted by their share of the total weight, ``rho_j = sum_i R_ij / sum_ij
   R_ij``, as DCI weights its codes; the alignment score is ``sum_j rho_j score_j``. Neurons
   whose weights are all zero carry no weight; if all are zero the score is undefined (NaN).

The permutation null shuffles the stimuli of the neurons against those of the units (the same
shuffle for every neuron, so the neurons' joint structure is kept) and refits with each
neuron's cross-validated penalty.

The bootstrap interval resamples the *neurons* with replacement by default (``bootstrap =
"neuron"``): the fits are kept and the score is recomputed over the drawn neurons (their
weights ``rho`` renormalised), which is the uncertainty from which neurons were recorded.
``bootstrap = "stimulus"`` resamples stimuli and refits every neuron with the fixed penalties;
a resample repeats about a third of the stimuli, which changes the lasso fits, and its
replicates sit systematically below the full-data score (for units that are the generating
features of simulated neurons, score 0.948, their 95% percentile interval was [0.788,
0.877]), so its interval describes the resampled fits more than the score.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias._values import check_count
from rsa_bias.analysis._inputs import ArrayLike, choose
from rsa_bias.analysis.similarity._hsic import _values_in_id_order
from rsa_bias.provenance import result_attrs


def _zscored(v: np.ndarray, name: str, *, drop_constant: bool) -> np.ndarray:
    sd = v.std(axis=0)
    keep = sd > 1e-12 * max(1.0, float(np.abs(v).max()))
    if not keep.any():
        raise ValueError(f"every column of {name} is constant over stimuli; nothing to align")
    if not drop_constant and not keep.all():
        raise ValueError(f"{int((~keep).sum())} neurons are constant over stimuli; drop them "
                         "first (their alignment is undefined)")
    return (v[:, keep] - v[:, keep].mean(axis=0)) / sd[keep]


def _score_from_weights(r: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Alignment from |weights| ``r (units, neurons)``: total, per-neuron scores, rho."""
    totals = r.sum(axis=0)
    total = totals.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = r / totals
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0)
    per = 1.0 - h / np.log(r.shape[0]) if r.shape[0] > 1 else np.ones(r.shape[1])
    per = np.where(totals > 0, per, np.nan)
    if total == 0:
        return float("nan"), per, np.zeros_like(totals)
    rho = totals / total
    return float(np.nansum(rho * per)), per, rho


_MAX_ITER = 20000


def _lasso_coefs(x: np.ndarray, y: np.ndarray, alphas: np.ndarray, tol: float,
                 init: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Signed lasso weights ``(units, neurons)``, one penalty per neuron, as
    ``sklearn.linear_model.Lasso`` (intercept by centring) solved from the Gram matrix,
    started at ``init``; and how many fits ended with a duality gap above ``tol * |y|²``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lasso_path

    xc = np.asfortranarray(x - x.mean(axis=0))
    yc = y - y.mean(axis=0)
    gram, xy = xc.T @ xc, xc.T @ yc
    w = np.zeros((x.shape[1], y.shape[1])) if init is None else init.copy()
    bad = 0
    for j, alpha in enumerate(alphas):
        yj = np.ascontiguousarray(yc[:, j])
        with warnings.catch_warnings():  # counted from the duality gap instead
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, coef, gap = lasso_path(xc, yj, alphas=[alpha], precompute=gram,
                                      Xy=np.ascontiguousarray(xy[:, j]),
                                      coef_init=w[:, j], tol=tol, max_iter=_MAX_ITER,
                                      check_input=False)
        w[:, j] = coef[:, 0]
        bad += int(gap[0] > tol * (yj @ yj))
    return w, bad


def _cv_alphas(x: np.ndarray, y: np.ndarray, cv: int, seed: int, tol: float,
               n_alphas: int) -> tuple[np.ndarray, int]:
    """Each neuron's ``LassoCV`` penalty, and how many path fits did not converge."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    folds = KFold(cv, shuffle=True, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        alphas = np.array([LassoCV(cv=folds, alphas=n_alphas, tol=tol, max_iter=_MAX_ITER)
                           .fit(x, y[:, j]).alpha_ for j in range(y.shape[1])])
    bad = 0
    for w in caught:  # count the non-converged fits, pass every other warning on
        if issubclass(w.category, ConvergenceWarning):
            bad += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return alphas, bad


def alignment_score(x: ArrayLike, y: ArrayLike, *, cv: int = 5, n_perm: int = 1000,
                    n_boot: int = 1000, bootstrap: str = "neuron", ci: float = 0.95,
                    tol: float = 1e-4, n_alphas: int = 100, seed: int = 0) -> xr.Dataset:
    """How one-to-one the units of ``x`` map onto the neurons of ``y`` (Higgins et al. 2021).

    The exact definition, its source and the inference are in the module docstring:
    lasso weights from units to each neuron, 1 − normalised entropy of each neuron's
    absolute weights over units, weighted across neurons as in the DCI disentanglement
    score. Each fixed-penalty fit is the ``sklearn.linear_model.Lasso`` problem solved by
    coordinate descent from the Gram matrix (``lasso_path``), a bootstrap refit started at
    the full-data weights; the ``n_perm`` permutations (and ``n_boot`` replicates with
    ``bootstrap="stimulus"``) refit every neuron, so lower them for large populations. A
    fit converges when its duality gap falls below ``tol * |y|²`` within 20000 passes;
    those that do not are counted in ``n_unconverged`` and summed up in one
    ``ConvergenceWarning``.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", "unit"), or array (n, p)
        Model units; aligned with ``y`` on stimulus ids (mismatches refused).
    y : xarray.DataArray with dims ("stimulus", "neuron"), or array (n, q)
        Neurons (or voxels).
    cv : int, default 5
        Shuffled folds of the cross-validated lasso penalty, chosen per neuron.
    n_perm : int, default 1000
        Permutations of the null (stimuli of ``y`` shuffled against ``x``).
    n_boot : int, default 1000
        Bootstrap replicates.
    bootstrap : {"neuron", "stimulus"}, default "neuron"
        What the bootstrap resamples (module docstring): the neurons, keeping the fits, or
        the stimuli, refitting every neuron.
    ci : float, default 0.95
        Coverage of the bootstrap percentile interval.
    tol : float, default 1e-4
        Convergence tolerance of every lasso fit (scikit-learn's, relative to ``|y|²``);
        1e-3 runs about twice as fast but moved the score of strongly correlated units
        (near-collinear CNN layers) by up to 0.04.
    n_alphas : int, default 100
        Penalties on the cross-validation path (``LassoCV(alphas=n_alphas)``).
    seed : int, default 0
        Seeds the folds, the permutations and the bootstrap; stimuli are drawn in ascending
        id order, so the result does not depend on the row order of labelled inputs.

    Returns
    -------
    xarray.Dataset
        ``score`` (the alignment), ``ci_low``, ``ci_high``, ``p_value`` (one-sided, (1 + #null
        >= score) / (1 + n_perm)), ``null(permutation)``, ``bootstrap(replicate)``,
        ``neuron_score(neuron)``, ``neuron_weight(neuron)`` (rho), ``alpha(neuron)`` (the
        cross-validated penalties) and ``n_unconverged`` (fits, cross-validation paths
        included, that stopped before ``tol``; 0 when all converged).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> units = rng.standard_normal((200, 4))
    >>> neurons = units + 0.1 * rng.standard_normal((200, 4))
    >>> res = alignment_score(units, neurons, n_perm=20, n_boot=20)
    >>> round(float(res.score), 3), round(float(res.p_value), 3)
    (0.946, 0.048)
    >>> q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    >>> round(float(alignment_score(units @ q, neurons, n_perm=20, n_boot=20).score), 3)
    0.147
    """
    bootstrap = choose({"neuron": "neuron", "stimulus": "stimulus"}, bootstrap, "bootstrap")
    check_count(n_perm, "n_perm")
    check_count(n_boot, "n_boot")
    check_count(cv, "cv")
    check_count(n_alphas, "n_alphas")
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    xv, yv = _values_in_id_order(x, y)
    if xv.shape[0] < 2 * cv:
        raise ValueError(f"{xv.shape[0]} stimuli are too few for cv={cv} folds; lower cv")
    xz = _zscored(xv, "x", drop_constant=True)
    yz = _zscored(yv, "y", drop_constant=False)
    alphas, bad = _cv_alphas(xz, yz, cv, seed, tol, n_alphas)
    w, bad_fit = _lasso_coefs(xz, yz, alphas, tol)
    score, per, rho = _score_from_weights(np.abs(w))
    rng = np.random.default_rng(seed)
    n = xz.shape[0]
    null, boot = np.empty(n_perm), np.empty(n_boot)
    for i in range(n_perm):
        wp, b = _lasso_coefs(xz, yz[rng.permutation(n)], alphas, tol)
        null[i], bad_fit = _score_from_weights(np.abs(wp))[0], bad_fit + b
    for i in range(n_boot):
        if bootstrap == "neuron":
            boot[i] = _score_from_weights(np.abs(w[:, rng.integers(0, w.shape[1],
                                                                   w.shape[1])]))[0]
            continue
        idx = rng.integers(0, n, n)
        wb, b = _lasso_coefs(xz[idx], yz[idx], alphas, tol, init=w)
        boot[i], bad_fit = _score_from_weights(np.abs(wb))[0], bad_fit + b
    bad += bad_fit
    if bad:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(f"{bad} lasso fits stopped after {_MAX_ITER} passes with a duality gap "
                      f"above tol={tol} (strongly correlated units); see n_unconverged",
                      ConvergenceWarning, stacklevel=2)
    finite = boot[np.isfinite(boot)]
    low, high = (np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]) if finite.size
                 else (np.nan, np.nan))
    p_value = (1 + int(np.sum(np.nan_to_num(null, nan=-np.inf) >= score - 1e-12))) / (1 + n_perm)
    return xr.Dataset(
        {"score": score, "ci_low": float(low), "ci_high": float(high), "p_value": p_value,
         "null": ("permutation", null), "bootstrap": ("replicate", boot),
         "neuron_score": ("neuron", per), "neuron_weight": ("neuron", rho),
         "alpha": ("neuron", alphas), "n_unconverged": bad},
        attrs=result_attrs("alignment_score", cv=cv, n_perm=n_perm, n_boot=n_boot,
                           bootstrap=bootstrap, ci=ci,
                           tol=tol, n_alphas=n_alphas, seed=seed))
