"""An activation file of your own model against a shipped brain dataset: one table, figures.

:func:`compare_to_brain` scores every layer of an activation file (``rsa-bias extract`` on the
dataset's images) against

* ``"rsa92"`` — human IT (4 subjects, RSA with a stimulus-bootstrap interval and the noise
  ceiling) and monkey IT on the 92 images (Kriegeskorte et al. 2008), as
  :func:`rsa_bias.experiments.brain_scores.rsa_vs_it`;
* ``"v4"`` — 50 V4 neurons on 640 images (Cowley et al. 2023): ridge encoding normalised by
  each neuron's noise ceiling, as :func:`rsa_bias.experiments.brain_scores.encoding_vs_v4`,
  RSA with the neurons' RDM (stimulus bootstrap) and linear CKA with the mean responses;

and, when the file's stimuli carry feature labels, the share of each layer's variance each
feature explains (:func:`rsa_bias.analysis.feature_variance_explained`, in sample), which says
which feature is loud in the layer a score is computed on. :func:`run_compare_to_brain` writes
the table (CSV), the results (netCDF) and the figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.analysis import cka, evaluate_models, feature_variance_explained, rdm
from rsa_bias.experiments.brain_scores import _rsa_scores, encoding_vs_v4, v4_responses
from rsa_bias.provenance import provenance_attrs, result_attrs
from rsa_bias.store import layer_activation, read_activations

#: The datasets :func:`compare_to_brain` scores against.
DATASETS = ("rsa92", "v4")


def _activations(tree: xr.DataTree, layers: Sequence[str] | None) -> dict:
    layers = list(layers) if layers is not None else list(tree.children)
    missing = [n for n in layers if n not in tree.children]
    if missing:
        raise ValueError(f"layers {missing} are not in the activation file; it holds "
                         f"{list(tree.children)}")
    model = str(tree.attrs.get("model_class", "model")).rsplit(".", 1)[-1]
    return {(model, n): layer_activation(tree, n).astype(np.float64).drop_vars(
        [c for c in ("split",) if c in tree.to_dataset().coords]) for n in layers}


def _need_ids(acts: dict, ids: np.ndarray, dataset: str) -> None:
    have = next(iter(acts.values()))["stimulus"].values
    # element by element: numpy compares 3 and "3" inconsistently (np.setdiff1d of ints and
    # strings finds no difference from about 20 elements on)
    known = set(have.tolist())
    missing = np.asarray([i for i in ids.tolist() if i not in known], dtype=object)
    if missing.size:
        how = f"extract on `--stimuli {dataset}`" if dataset in DATASETS else \
            "the recordings' stimulus ids must be the activation file's ids (file ids e.g. " \
            f"{have[:3].tolist()}, of type {have.dtype}; recording ids of type {ids.dtype})"
        raise ValueError(f"the activation file lacks {missing.size} of the {len(ids)} "
                         f"{dataset} stimuli (e.g. {missing[:3].tolist()}); {how}")


def _feature_shares(acts: dict, names: list[str]) -> xr.DataArray | None:
    if not names:
        return None
    r2 = [feature_variance_explained(a, features=names, fit_split=None, eval_split=None)["r2"]
          for a in acts.values()]
    return xr.concat(r2, dim=xr.Variable("layer", [k[1] for k in acts]))


def _score_recordings(out: xr.Dataset, acts: dict, rec: xr.Dataset, *, n_boot: int, cv: int,
                      seed: int, names: list[str]) -> xr.Dataset:
    """RSA (stimulus bootstrap), encoding (noise-normalised with repeats) and linear CKA of
    every layer against a user's ``response(stimulus, unit[, repeat | run])``, and the share
    of each feature in the CKA (exact Shapley values) when the stimuli carry ``names``."""
    from rsa_bias.analysis import RidgeEncoder, attribute_cka, cross_validated_scores
    from rsa_bias.experiments.brain_scores import ALPHAS, _zscored

    if "response" not in rec:
        raise ValueError(f"the recordings hold {sorted(map(str, rec.data_vars))}; they need a "
                         "'response' variable (stimulus, neuron[, repeat])")
    resp = rec["response"]
    if "run" in resp.dims and "repeat" not in resp.dims:  # runs of fMRI patterns: repeats
        resp = resp.rename(run="repeat")
    unit = [d for d in resp.dims if d not in ("stimulus", "repeat")]
    if "stimulus" not in resp.dims or len(unit) != 1:
        raise ValueError(f"response has dims {resp.dims}; expected (stimulus, <unit>"
                         "[, repeat]), e.g. from rsa_bias.brain.dataset_from_arrays")
    ids = np.sort(resp["stimulus"].values)
    _need_ids(acts, ids, "recorded")  # not a shipped name: the hint compares the ids
    resp = resp.sel(stimulus=ids)
    mean = (resp.mean("repeat") if "repeat" in resp.dims else resp).transpose("stimulus",
                                                                                unit[0])
    acts = {k: a.sel(stimulus=ids) for k, a in acts.items()}
    layer_names = [k[1] for k in acts]
    neural = rdm(mean.rename({unit[0]: "unit"})).expand_dims(subject=["recordings"])
    models = xr.concat([rdm(a) for a in acts.values()], dim="model", coords="minimal",
                       compat="override", join="exact").assign_coords(model=layer_names)
    ev = evaluate_models(models, neural, bootstrap="stimulus", n_boot=n_boot, seed=seed)
    for v, name in (("score", "rsa"), ("ci_low", "rsa_ci_low"), ("ci_high", "rsa_ci_high")):
        out[name] = ("layer", ev[v].values)
    target = resp.transpose("stimulus", unit[0], *(["repeat"] if "repeat" in resp.dims else []))
    enc = [cross_validated_scores(_zscored(a), target, cv=cv, estimator=RidgeEncoder(ALPHAS),
                                  seed=seed) for a in acts.values()]
    key = "pearson_r_normalised" if "pearson_r_normalised" in enc[0] else "pearson_r"
    out["encoding_r"] = ("layer", [float(e["pearson_r"].median()) for e in enc])
    if key != "pearson_r":
        out["encoding_normalised_r"] = ("layer", [float(e[key].where(
            np.isfinite(e[key])).median()) for e in enc])
    flat = mean.rename({unit[0]: "unit"})
    out["cka"] = ("layer", [float(cka(a, flat)) for a in acts.values()])
    if 1 <= len(names) <= 10:  # which feature carries each layer's CKA with the recordings
        shares = [attribute_cka(a, flat, features=names)["share"] for a in acts.values()]
        out["cka_share"] = xr.concat(shares, dim=xr.Variable("layer", layer_names))
    return out


def compare_to_brain(activations: xr.DataTree | str | Path, *,
                     dataset: str | xr.Dataset = "rsa92",
                     layers: Sequence[str] | None = None, n_boot: int = 1000, cv: int = 5,
                     seed: int = 0) -> xr.Dataset:
    """Score every layer of an activation file against a shipped brain dataset.

    Parameters
    ----------
    activations : xarray.DataTree, str or pathlib.Path
        An activation tree or file (``rsa-bias extract ... --stimuli rsa92`` or ``v4``),
        holding at least the dataset's stimuli (matched by id).
    dataset : {"rsa92", "v4"} or xarray.Dataset, default "rsa92"
        What to score against (see the module docstring), or your own recordings:
        ``response(stimulus, <unit>[, repeat])`` (:func:`rsa_bias.brain.dataset_from_arrays`,
        :func:`~rsa_bias.brain.dataset_from_csv`), scored by RSA of the mean responses'
        correlation RDM (Spearman, stimulus bootstrap), cross-validated ridge encoding
        (median Pearson r over units, normalised by each unit's split-half ceiling when there
        are repeats) and linear CKA.
    layers : sequence of str, optional
        Layers to score; default every layer of the file.
    n_boot : int, default 1000
        Bootstrap replicates of the intervals.
    cv : int, default 5
        Outer folds of the V4 encoding.
    seed : int, default 0
        Seeds the bootstraps and the folds.

    Returns
    -------
    xarray.Dataset
        Over ``layer``: for rsa92 ``rsa_human_it``, ``rsa_human_it_ci_low``/``_high``,
        ``rsa_monkey_it`` (with intervals) and the human-IT ``noise_ceiling_lower``/
        ``_upper``; for v4 ``encoding_normalised_r`` (median over neurons, with interval),
        ``encoding_r``, ``rsa_v4`` (with interval) and ``cka_v4``; for recordings ``rsa``
        (with interval), ``encoding_r`` (and ``encoding_normalised_r`` with repeats or runs),
        ``cka`` and, when the stimuli carry features, ``cka_share(layer, feature)`` (each
        feature's exact Shapley share of the CKA, :func:`rsa_bias.attribute_cka`);
        ``feature_r2(layer,
        feature)`` when the stimuli carry features; provenance attrs.
    """
    if not isinstance(dataset, xr.Dataset) and dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}, or "
                         "pass your recordings as an xarray.Dataset with response(stimulus, "
                         "neuron[, repeat]) (rsa_bias.brain.dataset_from_arrays / _from_csv)")
    tree = read_activations(activations) if isinstance(activations, str | Path) \
        else activations
    acts = _activations(tree, layers)
    names = list(tree.attrs.get("feature_names", []) or [])
    names = [names] if isinstance(names, str) else names
    layer_names = [k[1] for k in acts]
    out = xr.Dataset(coords={"layer": layer_names})
    if isinstance(dataset, xr.Dataset):
        out = _score_recordings(out, acts, dataset, n_boot=n_boot, cv=cv, seed=seed,
                                names=names)
        dataset = str(dataset.attrs.get("dataset", "recordings"))
    elif dataset == "rsa92":
        from rsa_bias.brain import load_rsa92

        rsa92 = load_rsa92(images=False)
        _need_ids(acts, rsa92["stimulus"].values, dataset)
        acts = {k: a.sel(stimulus=rsa92["stimulus"].values) for k, a in acts.items()}
        res = _rsa_scores(acts, rsa92, image_size=0, readout="file", n_components=None,
                          rdm_method="correlation", compare_method="spearman",
                          n_boot=n_boot, seed=seed).isel(model=0, drop=True)
        for target in ("human_it", "monkey_it"):
            r = res.sel(target=target)
            for v, name in (("score", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high")):
                out[f"rsa_{target}{name}"] = ("layer", r[v].values)
        for b in ("lower", "upper"):
            out[f"noise_ceiling_{b}"] = float(res[f"noise_ceiling_{b}"].sel(target="human_it"))
    else:
        from rsa_bias.brain import load_v4

        v4 = load_v4(images=False)
        _need_ids(acts, v4["stimulus"].values, dataset)
        enc = encoding_vs_v4({}, v4, activations=acts, cv=cv, n_boot=n_boot,
                             seed=seed).isel(model=0, drop=True)
        out["encoding_normalised_r"] = ("layer", enc["score"].values)
        out["encoding_ci_low"] = ("layer", enc["ci_low"].values)
        out["encoding_ci_high"] = ("layer", enc["ci_high"].values)
        out["encoding_r"] = ("layer", enc["score_raw"].values)
        resp = v4_responses(v4).mean("repeat").sortby("stimulus")
        neural = rdm(resp.rename(neuron="unit")).expand_dims(subject=["v4"])
        model_rdms = xr.concat([rdm(a.sel(stimulus=resp["stimulus"].values))
                                for a in acts.values()], dim="model", coords="minimal",
                               compat="override", join="exact")
        ev = evaluate_models(model_rdms.assign_coords(model=layer_names), neural,
                             bootstrap="stimulus", n_boot=n_boot, seed=seed)
        out["rsa_v4"] = ("layer", ev["score"].values)
        out["rsa_v4_ci_low"] = ("layer", ev["ci_low"].values)
        out["rsa_v4_ci_high"] = ("layer", ev["ci_high"].values)
        out["cka_v4"] = ("layer", [float(cka(a, resp.rename(neuron="unit")))
                                   for a in acts.values()])
    shares = _feature_shares(acts, names)
    if shares is not None:
        out["feature_r2"] = shares
    out.attrs.update(result_attrs("compare_to_brain", dataset=dataset, n_boot=n_boot, cv=cv,
                                  seed=seed, model_class=str(tree.attrs.get("model_class", "")),
                                  reduction=str(tree.attrs.get("reduction", ""))))
    for key in ("config_hash", "git_sha", "created", "model_source", "stimuli_source",
                "n_components", "projection_seed"):  # how the activations were made
        if key in tree.attrs:
            out.attrs[f"activations_{key}"] = tree.attrs[key]
    return out


def brain_comparison_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per layer, one column per score (the ``feature_r2`` shares as
    ``r2_<feature>``, the ``cka_share`` attributions as ``cka_share_<feature>``).

    Parameters
    ----------
    result : xarray.Dataset
        What :func:`compare_to_brain` returns (dim ``layer``).

    Returns
    -------
    pandas.DataFrame
        Column ``layer``, then every per-layer score, the layer-independent values (the
        noise ceiling) repeated on every row, and the per-feature shares.
    """
    cols = {v: result[v].values for v in result.data_vars if result[v].dims == ("layer",)}
    table = pd.DataFrame({"layer": result["layer"].values, **cols})
    for v in result.data_vars:  # the noise ceiling: one value for every layer
        if result[v].dims == ():
            table[v] = float(result[v])
    for var, prefix in (("feature_r2", "r2"), ("cka_share", "cka_share")):
        if var in result:
            for f in result[var]["feature"].values:
                table[f"{prefix}_{f}"] = result[var].sel(feature=f).values
    return table


def run_compare_to_brain(activations: str | Path, out_dir: str | Path, *,
                         dataset: str | xr.Dataset = "rsa92", layers: Sequence[str] | None = None,
                         n_boot: int = 1000, cv: int = 5, seed: int = 0) -> dict[str, Path]:
    """:func:`compare_to_brain`, written: ``brain_<dataset>.nc``, ``brain_<dataset>.csv`` and
    the figure ``brain_<dataset>.png`` (scores by layer with intervals and the ceiling; for
    recordings ``<dataset>`` is their ``attrs["dataset"]``, else ``recordings``).

    Parameters
    ----------
    activations : str or pathlib.Path
        The activation file.
    out_dir : str or pathlib.Path
        Folder for the files (created if missing).
    dataset, layers, n_boot, cv, seed
        As in :func:`compare_to_brain`.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"results", "table", "figure"}`` -> path.
    """
    from rsa_bias.plotting import save_figure
    from rsa_bias.plotting.scores import plot_scores_with_ceiling
    from rsa_bias.store import write_results
    from rsa_bias.store.tables import write_table

    out_dir = Path(out_dir)
    result = compare_to_brain(activations, dataset=dataset, layers=layers, n_boot=n_boot,
                              cv=cv, seed=seed)
    name = dataset if isinstance(dataset, str) else result.attrs["dataset"]
    config = {"activations": str(activations), "dataset": name, "n_boot": n_boot,
              "cv": cv, "seed": seed, "layers": list(layers) if layers else None}
    result.attrs = {**provenance_attrs(config, seed=seed, method="compare_to_brain"),
                    **result.attrs, "run_config_json": json.dumps(config)}
    paths = {"results": write_results(result, out_dir / f"brain_{name}.nc")}
    paths["table"] = write_table(brain_comparison_table(result), out_dir / f"brain_{name}.csv")
    score, ylabel = {"rsa92": ("rsa_human_it", "Spearman ρ with human IT"),
                     "v4": ("encoding", "median normalised r (V4)")}.get(
        name, ("rsa", f"Spearman ρ with {name}"))
    low, high = (f"{score}_ci_low", f"{score}_ci_high")
    plot_ds = xr.Dataset({"score": result[score if score != "encoding" else
                                          "encoding_normalised_r"],
                          "ci_low": result[low], "ci_high": result[high]})
    if name == "rsa92":
        plot_ds["noise_ceiling_lower"] = result["noise_ceiling_lower"]
        plot_ds["noise_ceiling_upper"] = result["noise_ceiling_upper"]
    fig = plot_scores_with_ceiling(plot_ds, panel=None, hue=None, ylabel=ylabel,
                                   **({} if name == "rsa92" else {"ceiling": None}))
    paths["figure"] = save_figure(fig, out_dir / f"brain_{name}.png", bbox_inches="tight")
    return paths
