"""Demonstrations that loud features, not computations, drive RSA, CKA and encoding scores.

Each demo is one function returning ``(results, figures)`` and one command::

    rsa-bias demo --list
    rsa-bias demo loud-feature --out DIR [--seed N]
    rsa-bias demo lampinen --out DIR [--seed N]

``loud-feature``
    A simulated brain computes features A (loud, 60 % of its signal variance) and B (quiet,
    15 %). Four candidate models compute A only, A and B (A loud), A and B (B loud), or B only.
    RSA and CKA rank them by how much of the *brain's loud feature* they carry, loudly: the
    A-only model beats the model computing both features with B loud. Encoding (median
    cross-validated R² over neurons) is immune to the model's loudness (the regression
    rescales: the two models computing both features score alike) but not to the brain's:
    A-only beats B-only more than four to one. With both representations equalised (every
    coded feature equally loud) the two models that compute what the brain computes come
    first under every measure. (Checked for seeds 0, 1 and 2.)
``lampinen``
    Lampinen, Chan & Hermann (2024): two models of the same complex task (an easy feature plus
    a hard one) can look *less* similar to each other than each looks to a model of the easy
    feature alone. Shown with simulated representations (ground truth: a loud easy feature, a
    quiet hard feature and loud idiosyncratic variance in the complex models) and with MLPs
    trained by :func:`rsa_bias.training.train` (easy bit + 5-bit parity vs easy bit only).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.analysis import (
    RidgeEncoder,
    attribute_cka,
    attribute_encoding,
    attribute_rsa,
    cka,
    compare_rdms,
    equalise_feature_variance,
    rdm,
    variance_shares,
)
from rsa_bias.brain.simulated import factorial_stimuli, simulate_population
from rsa_bias.provenance import provenance_attrs

ALPHAS = tuple(float(a) for a in np.logspace(-6, 6, 13))
RSA = {"rdm_method": "sqeuclidean", "compare_method": "pearson"}
BRAIN_SHARES = {"A": 0.6, "B": 0.15}
LOUD_MODELS = {"A only": {"A": 0.9}, "A loud, B quiet": {"A": 0.72, "B": 0.18},
               "B loud, A quiet": {"A": 0.18, "B": 0.72}, "B only": {"B": 0.9}}
COMPLEX_SHARES, SIMPLE_SHARES = {"easy": 0.5, "hard": 0.05}, {"easy": 0.9}
LAMPINEN_MODELS = ("complex_0", "complex_1", "complex_2", "simple_0", "simple_1")


# --- loud feature ------------------------------------------------------------------------------


def _measures(x: xr.DataArray, y: xr.DataArray, seed: int) -> dict[str, xr.Dataset]:
    return {"rsa": attribute_rsa(x, y, **RSA), "cka": attribute_cka(x, y),
            "encoding": attribute_encoding(x, y, estimator=RidgeEncoder(ALPHAS), seed=seed,
                                           summary="median")}


def _attribution_vars(per_model: dict[str, dict[str, dict[str, xr.Dataset]]]) -> xr.Dataset:
    """share/residual/total(model, measure, condition[, feature]) from nested attributions."""
    def stack(var: str) -> xr.DataArray:
        return xr.concat([xr.concat([xr.concat([per_model[m][c][k][var] for k in ("rsa", "cka",
                                                                                  "encoding")],
                                               dim="measure") for c in ("raw", "equalised")],
                                    dim="condition") for m in per_model], dim="model")

    out = xr.Dataset({v: stack(v) for v in ("share", "residual", "total")})
    out = out.transpose("model", "measure", "condition", ...)
    return out.assign_coords(model=list(per_model), condition=["raw", "equalised"],
                             measure=["rsa", "cka", "encoding"])


def loud_feature(*, seed: int = 0, quick: bool = False) -> tuple[xr.Dataset, dict]:
    """Rank models by a simulated brain's loud feature; equalisation fixes the ranking.

    A simulated brain (100 ReLU neurons, 4 noisy repeats at noise ratio 1) computes
    features A (loud, 60 % of its signal variance) and B (quiet, 15 %) of a 4 x 4 factorial
    stimulus set. Four candidate models (64 ReLU units each) compute A only, A and B (A
    loud), A and B (B loud), or B only. Each is scored against the repeat-averaged brain
    by RSA, CKA and encoding, on the raw representations and with both representations
    equalised by :func:`~rsa_bias.analysis.equalise_feature_variance` (every coded feature
    equally loud).

    Parameters
    ----------
    seed : int, default 0
        Seeds the brain (``seed``), the models (``seed + 1`` ..) and the encoding folds.
    quick : bool, default False
        4 instead of 8 stimuli per combination: runs faster, numbers less stable.

    Returns
    -------
    results : xarray.Dataset
        ``score(model, measure, condition)`` (condition ``raw``/``equalised``; measure
        ``rsa`` = Pearson r of squared-Euclidean RDMs, ``cka`` = linear CKA, ``encoding`` =
        median over neurons of the cross-validated R² of the model predicting the brain,
        robust to the odd neuron whose out-of-fold fit fails badly), the attribution
        ``share(model, measure, condition, feature)`` with ``residual`` and ``total``
        (= score; Shapley values for RSA and CKA, for encoding the split of the median
        neuron's R², which is noisier), the generating shares ``brain_share(component)``
        and ``model_share(model, component)``; provenance attrs.
    figures : dict of str to matplotlib.figure.Figure
        The figures ``scores`` and ``attribution``.
    """
    from rsa_bias.plotting.attribution import plot_attribution, plot_scores

    stimuli = factorial_stimuli({"A": 4, "B": 4}, repeats=4 if quick else 8)
    brain = simulate_population(stimuli, BRAIN_SHARES, n_neurons=100, noise_ratio=1.0,
                                n_repeats=4, nonlinearity="relu", seed=seed)
    y = brain.response.mean("repeat")
    y_eq = equalise_feature_variance(y)
    per_model, model_share = {}, []
    for i, (name, shares) in enumerate(LOUD_MODELS.items()):
        model = simulate_population(stimuli, shares, n_neurons=64, nonlinearity="relu",
                                    seed=seed + 1 + i)
        model_share.append(model.true_share)
        x = model.signal
        per_model[name] = {"raw": _measures(x, y, seed),
                           "equalised": _measures(equalise_feature_variance(x), y_eq, seed)}
    res = _attribution_vars(per_model)
    res["score"] = res["total"]
    res["brain_share"] = brain.true_share
    res["model_share"] = xr.concat(model_share, dim="model").assign_coords(model=res.model)
    config = {"brain_shares": BRAIN_SHARES, "models": LOUD_MODELS, "n_stimuli":
              stimuli.sizes["stimulus"], "noise_ratio": 1.0, "n_repeats": 4, "rsa": RSA,
              "alphas": list(ALPHAS), "encoding_summary": "median", "quick": quick}
    res.attrs.update(provenance_attrs(config=config, seed=seed, method="demo_loud_feature"))
    figures = {"scores": plot_scores(res.score.rename(condition="comparison"),
                                     hue="comparison")}
    figures["scores"].suptitle("A simulated brain (A loud, B quiet) scored against four models",
                               fontsize=10)
    figures["attribution"] = _attribution_figure(res, plot_attribution)
    return res, figures


def _attribution_figure(res: xr.Dataset, plot_attribution) -> object:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(11, 6.2), sharex=True, layout="constrained")
    for row, condition in zip(axes, ("raw", "equalised"), strict=True):
        for ax, measure in zip(row, ("rsa", "cka", "encoding"), strict=True):
            sub = res.sel(measure=measure, condition=condition)
            plot_attribution(sub, dim="model", ax=ax, title=f"{measure}, {condition}",
                             ylabel="share of the score" if measure == "rsa" else "")
    axes[0][0].legend(frameon=False, fontsize=7, loc="upper right")
    fig.suptitle("Which feature carries each score (Shapley shares; dash: full score)",
                 fontsize=10)
    return fig


# --- Lampinen et al.: same task, less similar ---------------------------------------------------


def _simulated_models(seed: int, quick: bool) -> dict[str, xr.DataArray]:
    stimuli = factorial_stimuli({"easy": 2, "hard": 2}, repeats=16 if quick else 64)
    out = {}
    for i, name in enumerate(LAMPINEN_MODELS):
        shares = COMPLEX_SHARES if name.startswith("complex") else SIMPLE_SHARES
        out[name] = simulate_population(stimuli, shares, n_neurons=64, residual_rank=3,
                                        seed=seed * 100 + i).signal.rename(neuron="unit")
    return out


def _trained_models(seed: int, quick: bool) -> tuple[dict[str, xr.DataArray], xr.DataArray]:
    """Last hidden layer of MLPs (test stimuli): 3 seeds of easy + hard, 2 of easy only."""
    from rsa_bias.config import FeatureSpec, ModelConfig, TaskConfig, TrainingConfig
    from rsa_bias.tasks import make_binary_task
    from rsa_bias.training import train

    task = make_binary_task(TaskConfig(
        features=(FeatureSpec("easy", "linear", 1), FeatureSpec("hard", "parity", 5)),
        n_distractor=3 if quick else 7, coding="01", val_size=64 if quick else 512,
        test_size=64 if quick else 512, seed=seed))
    steps = 100 if quick else 3000
    model_cfg = ModelConfig(depth=2, width=32 if quick else 128, activation="relu")
    train_cfg = TrainingConfig(steps=steps, eval_every=steps, snapshot_steps=(steps,),
                               batch_size=128, lr=1e-3, checkpoint_every=0)
    test = task.split.values == "test"
    reps, acc = {}, np.full((len(LAMPINEN_MODELS), 2), np.nan)
    for i, name in enumerate(LAMPINEN_MODELS):
        names = _computed(name)
        run = train(task.assign_attrs(feature_names=names), model_cfg, train_cfg,
                    seed=seed * 100 + i, snapshot_mask=test, progress=False)
        acc[i, :len(names)] = [run.history["test"]["accuracy"][n][-1] for n in names]
        reps[name] = xr.DataArray(run.snapshots[steps]["hidden_1"], dims=("stimulus", "unit"),
                                  coords={k: ("stimulus", task[k].values[test])
                                          for k in ("feature_easy", "feature_hard")},
                                  attrs={"feature_names": ["easy", "hard"]}
                                  ).assign_coords(stimulus=task.stimulus.values[test])
    accuracy = xr.DataArray(acc, dims=("model", "feature"),
                            coords={"model": list(LAMPINEN_MODELS), "feature": ["easy", "hard"]})
    return reps, accuracy


def _computed(name: str) -> list[str]:
    return ["easy", "hard"] if name.startswith("complex") else ["easy"]


def _similarities(reps: dict[str, xr.DataArray]) -> xr.DataArray:
    """similarity(measure, condition, model_a, model_b) for CKA and RSA.

    ``equalised``: every feature a model was built or trained to compute gets the same share
    of its variance (a simple model's chance "hard" variance is left alone).
    """
    conditions = {"raw": reps, "equalised": {
        k: equalise_feature_variance(v, features=_computed(k)) for k, v in reps.items()}}
    rdms = {c: {k: rdm(v, method=RSA["rdm_method"]) for k, v in r.items()}
            for c, r in conditions.items()}
    names = list(reps)
    out = np.empty((2, 2, len(names), len(names)))
    for ci, c in enumerate(conditions):
        for (i, a), (j, b) in itertools.product(enumerate(names), repeat=2):
            out[0, ci, i, j] = cka(conditions[c][a], conditions[c][b])
            out[1, ci, i, j] = float(compare_rdms(rdms[c][a], rdms[c][b],
                                                  method=RSA["compare_method"]))
    return xr.DataArray(out, dims=("measure", "condition", "model_a", "model_b"),
                        coords={"measure": ["cka", "rsa"], "condition": list(conditions),
                                "model_a": names, "model_b": names})


PAIRS = {"complex vs complex": [("complex_0", "complex_1"), ("complex_0", "complex_2"),
                                ("complex_1", "complex_2")],
         "complex vs simple": [(f"complex_{i}", f"simple_{j}") for i in range(3)
                               for j in range(2)]}


def _lampinen_source(reps: dict[str, xr.DataArray]) -> xr.Dataset:
    sim = _similarities(reps)
    pair_means = [xr.concat([sim.sel(model_a=a, model_b=b, drop=True) for a, b in pairs],
                            dim="p").mean("p") for pairs in PAIRS.values()]
    attributions = [xr.concat([attribute_cka(reps[a], reps[b])[["share", "residual", "total"]]
                               for a, b in pairs], dim="p").mean("p")
                    for pairs in PAIRS.values()]
    shares = xr.concat([variance_shares(v).share for v in reps.values()], dim="model")
    return xr.Dataset({
        "similarity": sim,
        "pair_similarity": xr.concat(pair_means, dim="pair"),
        "cka_share": xr.concat([a.share for a in attributions], dim="pair"),
        "cka_residual": xr.concat([a.residual for a in attributions], dim="pair"),
        "variance_share": shares}).assign_coords(pair=list(PAIRS), model=list(reps))


def lampinen(*, seed: int = 0, quick: bool = False,
             train_networks: bool = True) -> tuple[xr.Dataset, dict]:
    """Same task, less similar: simulated representations and trained MLPs.

    Lampinen, Chan & Hermann (2024): two models of the same complex task (an easy feature
    plus a hard one) can look *less* similar to each other than each looks to a model of
    the easy feature alone. Three "complex" and two "simple" models are compared: simulated
    representations (ground truth: a loud easy feature, a quiet hard feature and loud
    idiosyncratic variance in the complex models; the residual has rank 3 in every model)
    and, with
    ``train_networks``, 2-layer MLPs trained by :func:`rsa_bias.training.train` (easy bit +
    5-bit parity vs easy bit only; their last hidden layer on the test stimuli).

    Parameters
    ----------
    seed : int, default 0
        Seeds the simulated models, the task and the training runs.
    quick : bool, default False
        A tiny version (fewer stimuli, 100 training steps of narrower MLPs instead of 3000)
        that runs in seconds; numbers not meaningful.
    train_networks : bool, default True
        Also train the MLPs (source ``trained``); ``False`` keeps the simulated models only.

    Returns
    -------
    results : xarray.Dataset
        Over ``source`` (``simulated``[, ``trained``]):
        ``similarity(source, measure, condition, model_a, model_b)`` (CKA and RSA, raw and
        equalised: every feature a model was built or trained to compute given the same
        share of its variance), ``pair_similarity(source, pair, measure, condition)``
        (means over the complex–complex and complex–simple pairs), the CKA attribution
        averaged over those pairs ``cka_share(source, pair, feature)`` /
        ``cka_residual``, each model's ``variance_share(source, model, feature)`` and, for
        trained networks, ``accuracy(model, feature)`` on held-out (test) stimuli;
        provenance attrs.
    figures : dict of str to matplotlib.figure.Figure
        The figures ``similarity`` and ``attribution``.
    """
    sources = {"simulated": _lampinen_source(_simulated_models(seed, quick))}
    accuracy = None
    if train_networks:
        reps, accuracy = _trained_models(seed, quick)
        sources["trained"] = _lampinen_source(reps)
    res = xr.concat(list(sources.values()), dim="source").assign_coords(source=list(sources))
    if accuracy is not None:
        res["accuracy"] = accuracy
    config = {"complex_shares": COMPLEX_SHARES, "simple_shares": SIMPLE_SHARES,
              "residual_rank": 3, "trained": train_networks, "quick": quick, "rsa": RSA}
    res.attrs.update(provenance_attrs(config=config, seed=seed, method="demo_lampinen"))
    return res, _lampinen_figures(res)


def _lampinen_figures(res: xr.Dataset) -> dict:
    from rsa_bias.plotting.attribution import plot_attribution, plot_similarity_matrices

    matrices = {f"{s}: CKA, {c}": res.similarity.sel(source=s, measure="cka", condition=c)
                for s in res.source.values for c in ("raw", "equalised")}
    figures = {"similarity": plot_similarity_matrices(matrices, ncols=2)}
    figures["similarity"].suptitle("complex = easy + hard feature, simple = easy only",
                                   fontsize=10)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, res.sizes["source"], figsize=(1.2 + 3.4 * res.sizes["source"], 3.2),
                             squeeze=False, layout="constrained")
    for ax, s in zip(axes[0], res.source.values, strict=True):
        sub = res.sel(source=s).rename(cka_share="share", cka_residual="residual")
        plot_attribution(sub[["share", "residual"]], dim="pair", ax=ax,
                         title=f"{s}: what carries CKA", ylabel="mean CKA share")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center",
               frameon=False, fontsize=8)
    figures["attribution"] = fig
    return figures


# --- registry and runner -----------------------------------------------------------------------


def loud_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """Scores of the four candidate models, raw and equalised, for every measure."""
    return results["results"].score.to_series().unstack(["measure", "condition"])


def lampinen_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """Mean similarity of complex-complex and complex-simple model pairs."""
    return results["results"].pair_similarity.to_series().unstack("pair")


def _write(name: str, res: xr.Dataset, figures: dict, out_dir: str | Path,
           figures_dir: str | Path | None) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """Write ``out_dir/results.nc`` and the figures (``<demo>_<figure>.png``, the demo name's
    dashes as underscores) into ``figures_dir`` (default ``out_dir``)."""
    from rsa_bias.plotting import save_figure
    from rsa_bias.store import write_results

    out_dir = Path(out_dir)
    fig_dir = Path(figures_dir) if figures_dir is not None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {"results": write_results(res, out_dir / "results.nc")}
    for key, fig in figures.items():
        stem = f"{name.replace('-', '_')}_{key}"
        paths[stem] = save_figure(fig, fig_dir / f"{stem}.png", dpi=100)
    return {"results": res}, paths


def run_loud_feature(out_dir: str | Path, *, seed: int = 0, quick: bool = False,
                     figures_dir: str | Path | None = None,
                     ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """The registry's ``loud-feature`` demo: :func:`loud_feature`, written to ``out_dir``."""
    return _write("loud-feature", *loud_feature(seed=seed, quick=quick), out_dir, figures_dir)


def run_lampinen(out_dir: str | Path, *, seed: int = 0, quick: bool = False,
                 figures_dir: str | Path | None = None,
                 ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """The registry's ``lampinen`` demo: :func:`lampinen`, written to ``out_dir``."""
    return _write("lampinen", *lampinen(seed=seed, quick=quick), out_dir, figures_dir)
