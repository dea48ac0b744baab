"""Unit-neuron alignment (Higgins et al. 2021) of the CNN layers of ``rsa-bias brain`` with the
50 V4 neurons (Cowley et al. 2023), and on simulated populations whose answer is known.

:func:`alignment_vs_v4` scores every model x layer with
:func:`~rsa_bias.analysis.alignment_score` (cross-validated lasso from the z-scored units of a
layer to each neuron; 1 - normalised entropy of the weights). :func:`alignment_ground_truth`
gives the reference rows: simulated neurons each tuned to one generating feature of binary
Trifeature images, scored against those features (near 1), a random rotation of them (the
same information in mixed axes: clearly lower) and random-CNN layers on the same images.
The permutation null of the score is not 0: a sparse lasso fit of shuffled neurons also puts
its weight on few units, so compare scores with ``null_mean`` and ``p_value``.
Random projections (``n_components``) are not offered: they rotate the units, which is
exactly what the score measures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from torch import nn

from rsa_bias.analysis import alignment_score
from rsa_bias.experiments._grid import by_model_layer, model_layer_names
from rsa_bias.experiments.brain_scores import v4_responses
from rsa_bias.experiments.trifeature_cnn import all_layer_activations
from rsa_bias.provenance import result_attrs

_SCALARS = ("score", "ci_low", "ci_high", "p_value", "null_mean", "n_units", "n_unconverged")


def _one(x: xr.DataArray, y: xr.DataArray, kw: dict) -> dict:
    res = alignment_score(x, y, **kw)
    out = {v: float(res[v]) for v in ("score", "ci_low", "ci_high", "p_value",
                                      "n_unconverged")}
    out["null_mean"] = float(np.nanmean(res["null"].values))
    out["n_units"] = int((x.std("stimulus") > 0).sum())
    out["neuron_score"] = res["neuron_score"].values
    out["alpha"] = res["alpha"].values
    return out


def _score_all(pairs: Mapping, y: xr.DataArray, kw: dict, n_jobs: int) -> dict:
    if n_jobs == 1:
        return {k: _one(x, y, kw) for k, x in pairs.items()}
    from joblib import Parallel, delayed

    done = Parallel(n_jobs=n_jobs)(delayed(_one)(x, y, kw) for x in pairs.values())
    return dict(zip(pairs, done, strict=True))


def _units(a: xr.DataArray, ids: np.ndarray) -> xr.DataArray:
    """``a(stimulus, unit)`` on ``ids`` (refused when they differ), constant units dropped."""
    missing = np.setdiff1d(ids, a["stimulus"].values)
    if missing.size:
        raise ValueError(f"{missing.size} V4 images lack activations (e.g. "
                         f"{missing[:3].tolist()}); compute them on v4['image']")
    a = a.sel(stimulus=ids).transpose("stimulus", "unit")
    return a.isel(unit=(a.std("stimulus") > 0).values)


def alignment_vs_v4(models: Mapping[str, nn.Module], v4: xr.Dataset | None = None, *,
                    layers: Sequence[str] | None = None, image_size: int = 64,
                    readout: str = "gap", n_perm: int = 50, n_boot: int = 100, cv: int = 5,
                    tol: float = 1e-4, n_jobs: int = 1, seed: int = 0,
                    activations: Mapping[tuple[str, str], xr.DataArray] | None = None
                    ) -> xr.Dataset:
    """Score every model x layer by its unit-neuron alignment with the V4 neurons.

    The neurons are the mean over the first :func:`~rsa_bias.experiments.brain_scores.
    v4_responses` repeats, in sorted stimulus-id order (so the folds and resamples do not
    depend on the data's order); units constant over the images are dropped, and
    :func:`~rsa_bias.analysis.alignment_score` z-scores the rest. Every layer is scored with
    the same ``seed``, so the folds, permutations and bootstrap draws are shared.

    Parameters
    ----------
    models : mapping of str to torch.nn.Module
        ``{model name: network}``, e.g. :func:`~rsa_bias.experiments.random_models` plus a
        trained CNN.
    v4 : xarray.Dataset, optional
        The dataset of :func:`~rsa_bias.brain.load_v4` (with images); loaded when not given.
    layers : sequence of str, optional
        The layers to score; default as :func:`~rsa_bias.experiments.layer_activations`.
    image_size : int, default 64
        Side the images are resized to, as in
        :func:`~rsa_bias.experiments.brain_scores.encoding_vs_v4`.
    readout : str, default "gap"
        Conv feature maps to units, as :func:`~rsa_bias.experiments.layer_activations`.
    n_perm, n_boot, cv, tol
        Of :func:`~rsa_bias.analysis.alignment_score` (permutations, bootstrap replicates,
        folds of the penalty choice, lasso tolerance).
    n_jobs : int, default 1
        Layers scored in parallel (joblib processes); the numbers do not depend on it.
    seed : int, default 0
        Seeds the folds, the permutations and the bootstrap.
    activations : mapping of (str, str) to xarray.DataArray, optional
        ``{(model, layer): activation(stimulus, unit)}`` of the V4 images when already
        computed; ``models`` and ``layers`` are then not used.

    Returns
    -------
    xarray.Dataset
        ``score``, ``ci_low``, ``ci_high`` (95% percentile interval over neurons), ``p_value``
        (permutation), ``null_mean`` (mean of the permutation null), ``n_units`` (units
        scored) and ``n_unconverged`` (lasso fits short of ``tol``), all (model, layer);
        ``neuron_score`` and ``alpha`` (model, layer, neuron); provenance attrs.

    Raises
    ------
    ValueError
        When activations lack V4 images, or for bad ``n_perm``, ``n_boot``, ``cv``, ``tol``.

    Examples
    --------
    >>> from rsa_bias.brain import load_v4
    >>> from rsa_bias.experiments import random_models
    >>> v4 = load_v4().isel(stimulus=slice(0, 120), neuron=slice(0, 3))
    >>> res = alignment_vs_v4(random_models({"relu": {}}), v4, layers=["conv_0"],
    ...                       image_size=32, n_perm=3, n_boot=3, cv=3)
    >>> res.score.dims, res.score.shape, bool(0 <= res.score.item() <= 1)
    (('model', 'layer'), (1, 1), True)
    >>> int(res.n_units.item()), int(res.n_unconverged.item())
    (16, 0)
    """
    from rsa_bias.brain import load_v4

    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    v4 = load_v4() if v4 is None else v4
    resp = v4_responses(v4).mean("repeat").sortby("stimulus")
    acts = activations if activations is not None else all_layer_activations(
        models, v4["image"], layers=layers, image_size=image_size, readout=readout, seed=seed)
    ids = resp["stimulus"].values
    pairs = {k: _units(a, ids) for k, a in acts.items()}
    kw = {"cv": cv, "n_perm": n_perm, "n_boot": n_boot, "tol": tol, "seed": seed}
    rows = _score_all(pairs, resp, kw, n_jobs)
    models_, layers_ = model_layer_names(rows)
    n = resp.sizes["neuron"]
    out = xr.Dataset(
        {**{v: (("model", "layer"), by_model_layer({k: r[v] for k, r in rows.items()},
                                                   models_, layers_)) for v in _SCALARS},
         **{v: (("model", "layer", "neuron"),
                by_model_layer({k: r[v] for k, r in rows.items()}, models_, layers_, (n,)))
            for v in ("neuron_score", "alpha")}},
        coords={"model": models_, "layer": layers_, "neuron": resp["neuron"].values})
    out.attrs.update(result_attrs(
        "alignment_vs_v4", method="lasso alignment score (Higgins et al. 2021)",
        image_size=image_size, readout=readout, cv=cv, n_perm=n_perm, n_boot=n_boot, tol=tol,
        ci=0.95, n_repeats=int(v4_responses(v4).sizes["repeat"]), seed=seed))
    return out


def binary_trifeature_images(*, n_per_cell: int = 80, seed: int = 0) -> xr.Dataset:
    """Trifeature images with 2 colours x 2 shapes x 2 textures, ``n_per_cell`` each (all
    splits together), 32 x 32 pixels: one direction per feature (:func:`alignment_ground_truth`)."""
    from rsa_bias.config import ImageTaskConfig, TaskConfig
    from rsa_bias.tasks import make_image_task

    if n_per_cell < 3:
        raise ValueError(f"n_per_cell must be >= 3 (one image per split and cell), got "
                         f"{n_per_cell}")
    return make_image_task(TaskConfig(
        kind="images", n_train=8 * (n_per_cell - 2), val_size=8, test_size=8, seed=seed,
        images=ImageTaskConfig(n_colours=2, n_shapes=2, n_textures=2)))


def _simulated_neurons(stimuli: xr.Dataset, n_per_feature: int, share: float,
                       noise_ratio: float, seed: int) -> xr.DataArray:
    from rsa_bias.brain.simulated import simulate_population

    pops = [simulate_population(stimuli, {f: share}, n_neurons=n_per_feature,
                                noise_ratio=noise_ratio, seed=seed + i)["response"]
            for i, f in enumerate(stimuli.attrs["feature_names"])]
    y = xr.concat(pops, dim="neuron").transpose("stimulus", "neuron")
    return y.assign_coords(neuron=np.arange(y.sizes["neuron"]))


def alignment_ground_truth(models: Mapping[str, nn.Module] | None = None, *,
                           layers: Sequence[str] | None = None, n_per_cell: int = 80,
                           n_per_feature: int = 10, share: float = 0.5,
                           noise_ratio: float = 0.5, n_perm: int = 50, n_boot: int = 100,
                           cv: int = 5, tol: float = 1e-4, n_jobs: int = 1,
                           seed: int = 0) -> xr.Dataset:
    """Alignment scores with a known answer: neurons each tuned to one generating feature.

    The stimuli are :func:`binary_trifeature_images` (colour, shape and texture, each with
    2 values, so each feature is one direction ``q_f``: its centred, normalised indicator,
    :func:`~rsa_bias.brain.simulated.component_bases`). For each feature, ``n_per_feature``
    neurons are :func:`~rsa_bias.brain.simulate_population` with that feature's share
    ``share`` (the rest random residual variance, orthogonal to all three features) plus
    trial noise of ``noise_ratio`` times the signal variance, so each neuron is driven by
    exactly one feature. They are scored against three kinds of units: the generating
    features ``q_f`` themselves (near 1), the same features under one seeded random rotation
    (the same information in mixed axes; clearly lower) and each layer of ``models`` on
    the images (32 px, global-average readout).

    Parameters
    ----------
    models : mapping of str to torch.nn.Module, optional
        Networks whose layers become rows; default the random Kaiming-ReLU CNN of
        :func:`~rsa_bias.experiments.random_models` (seeded by ``seed``).
    layers : sequence of str, optional
        The layers; default as :func:`~rsa_bias.experiments.layer_activations`.
    n_per_cell : int, default 80
        Images per combination (8 combinations; 640 images by default, as V4).
    n_per_feature : int, default 10
        Neurons tuned to each feature.
    share : float, default 0.5
        Each neuron's signal variance in its feature (0 < share <= 1).
    noise_ratio : float, default 0.5
        Trial-noise variance / signal variance.
    n_perm, n_boot, cv, tol, n_jobs
        As in :func:`alignment_vs_v4`.
    seed : int, default 0
        Seeds the images, the populations, the rotation, the default model and the
        resampling.

    Returns
    -------
    xarray.Dataset
        The (model, layer) variables of :func:`alignment_vs_v4` with the one dim ``row``:
        ``"generating features"``, ``"rotated features"``, then ``"<model> <layer>"``.

    Examples
    --------
    >>> res = alignment_ground_truth(layers=["conv_0"], n_per_cell=10, n_per_feature=2,
    ...                              n_perm=3, n_boot=3, cv=2)
    >>> res.row.values.tolist()
    ['generating features', 'rotated features', 'random kaiming relu conv_0']
    >>> bool(res.score.sel(row="generating features") > res.score.sel(row="rotated features"))
    True
    """
    import torch

    from rsa_bias.brain.simulated import component_bases
    from rsa_bias.experiments.trifeature_cnn import RANDOM_FAMILIES, random_models
    from rsa_bias.training.activations import layer_activations

    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    stimuli = binary_trifeature_images(n_per_cell=n_per_cell, seed=seed)
    ids = stimuli["stimulus"].values
    y = _simulated_neurons(stimuli, n_per_feature, share, noise_ratio, seed)
    names = list(stimuli.attrs["feature_names"])
    q = np.hstack(list(component_bases(stimuli, []).values()))
    rot, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((q.shape[1],) * 2))
    pairs = {"generating features": q, "rotated features": q @ rot}
    pairs = {k: xr.DataArray(v, dims=("stimulus", "unit"),
                             coords={"stimulus": ids, "unit": names}) for k, v in pairs.items()}
    if models is None:
        fam = "random kaiming relu"
        models = random_models({fam: RANDOM_FAMILIES[fam]}, seed=seed)
    x = torch.as_tensor(stimuli["inputs"].values)
    for m, model in models.items():
        for layer, a in layer_activations(model, x, stimulus_ids=ids, layers=layers).items():
            pairs[f"{m} {layer}"] = _units(a, ids)
    kw = {"cv": cv, "n_perm": n_perm, "n_boot": n_boot, "tol": tol, "seed": seed}
    rows = _score_all(pairs, y, kw, n_jobs)
    out = xr.Dataset({v: ("row", [r[v] for r in rows.values()]) for v in _SCALARS},
                     coords={"row": list(rows)})
    out.attrs.update(result_attrs(
        "alignment_ground_truth", method="lasso alignment score (Higgins et al. 2021)",
        n_images=len(ids), n_per_feature=n_per_feature, share=share, noise_ratio=noise_ratio,
        cv=cv, n_perm=n_perm, n_boot=n_boot, tol=tol, ci=0.95, seed=seed))
    return out


def alignment_table(v4_result: xr.Dataset, ground_truth: xr.Dataset | None = None):
    """One row per scored population: ``units``, ``score``, ``ci_low``, ``ci_high``,
    ``p_value``, ``null_mean``, ``n_units``, ``n_unconverged`` and ``neurons`` (``"V4"`` or
    ``"simulated"``), the V4 rows first (model x layer), then the ground-truth rows."""
    import pandas as pd

    v4 = v4_result[list(_SCALARS)].to_dataframe().reset_index()
    v4.insert(0, "units", v4.pop("model") + " " + v4.pop("layer"))
    v4.insert(0, "neurons", "V4")
    parts = [v4]
    if ground_truth is not None:
        gt = ground_truth[list(_SCALARS)].to_dataframe().reset_index()
        gt.insert(0, "units", gt.pop("row"))
        gt.insert(0, "neurons", "simulated")
        parts.append(gt)
    return pd.concat(parts, ignore_index=True)


def run_alignment(out_dir, *, seed: int = 0, image_size: int = 64, n_perm: int = 50,
                  n_boot: int = 100, n_jobs: int = 1, trained: bool = False,
                  progress: bool = False):
    """Score the random CNNs (and optionally the trained one) against V4 and the simulated
    ground truth, write ``alignment_v4.nc`` and ``alignment_ground_truth.nc``.

    The function behind a command line verb (``rsa-bias alignment``): the random models of
    :func:`~rsa_bias.experiments.random_models` (and with ``trained`` the small Trifeature
    CNN of :func:`~rsa_bias.experiments.train_trifeature_cnn`) against the 50 V4 neurons by
    :func:`alignment_vs_v4`, and :func:`alignment_ground_truth` with the same settings.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for the two result files (created if missing).
    seed : int, default 0
        Seeds the models, the training, the simulation and every resampling.
    image_size : int, default 64
        Side the V4 images are resized to.
    n_perm, n_boot, n_jobs
        As in :func:`alignment_vs_v4`.
    trained : bool, default False
        Also train and score the Trifeature CNN (a minute or two on a CPU).
    progress : bool, default False
        Show a progress bar while training.

    Returns
    -------
    table : pandas.DataFrame
        :func:`alignment_table` of both results.
    paths : dict of str to pathlib.Path
        ``{"alignment_v4": path, "alignment_ground_truth": path}``.
    elapsed_s : float
        Wall time of the whole run.
    """
    import time
    from pathlib import Path

    from rsa_bias.experiments.trifeature_cnn import random_models, train_trifeature_cnn
    from rsa_bias.provenance import provenance_attrs
    from rsa_bias.store import write_results

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = random_models(seed=seed)
    if trained:
        models["trained"] = train_trifeature_cnn(seed=seed, progress=progress).model
    kw = {"n_perm": n_perm, "n_boot": n_boot, "n_jobs": n_jobs, "seed": seed}
    results = {"alignment_v4": alignment_vs_v4(models, image_size=image_size, **kw),
               "alignment_ground_truth": alignment_ground_truth(**kw)}
    paths = {}
    for name, ds in results.items():
        ds.attrs = {**provenance_attrs(seed=seed, method=f"alignment/{name}"), **ds.attrs,
                    "trained": int(trained)}
        paths[name] = write_results(ds, out_dir / f"{name}.nc")
    return (alignment_table(results["alignment_v4"], results["alignment_ground_truth"]),
            paths, time.perf_counter() - t0)
