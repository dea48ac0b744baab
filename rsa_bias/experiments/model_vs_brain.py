"""The whole networks-vs-brains comparison in one call (``rsa-bias brain``): train the
Trifeature CNN, compare it and the random-init CNNs with IT (92 images) and V4 (640 images),
and write every result and figure."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import xarray as xr

from rsa_bias.analysis import cka_matrix, rdm
from rsa_bias.experiments.brain_scores import encoding_vs_v4, rsa_vs_it
from rsa_bias.experiments.trifeature_cnn import (
    HEADS,
    all_layer_activations,
    random_models,
    train_trifeature_cnn,
    trifeature_task,
    trifeature_variance,
)
from rsa_bias.provenance import provenance_attrs


def run_comparison(out_dir: str | Path, *, small: bool = True, seed: int = 0,
                   image_size: int = 64, progress: bool = False,
                   ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """Train the Trifeature CNN, compare it and the random CNNs with IT and V4, save it all.

    ``small`` trains 500 steps on 20 images per combination and draws 500 bootstrap samples
    (full: 1000 steps, 40 per combination, 1000 samples); a few minutes on one CPU thread
    at most. Writes (atomically, with provenance attrs) ``trifeature.nc`` (test accuracy and
    categorical feature variance per model x layer), ``rsa_it.nc``, ``encoding_v4.nc`` and
    ``cka.nc`` (trained vs random Kaiming-ReLU layers on the 92 images), and figures
    ``rsa_it.png``, ``encoding_v4.png``, ``cka.png``, ``rdms.png``, ``trifeature.png``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for the files (created if missing).
    small : bool, default True
        The small version described above; ``False`` runs the full one.
    seed : int, default 0
        Seeds the task, the training, the random initialisations and every resampling.
    image_size : int, default 64
        Side the photographs are resized to before the networks see them.
    progress : bool, default False
        Show a progress bar while training.

    Returns
    -------
    results : dict of str to xarray.Dataset
        ``trifeature``, ``rsa_it``, ``encoding_v4`` and ``cka``.
    paths : dict of str to pathlib.Path
        ``{name: path}`` of every file written.
    """
    from rsa_bias.brain import load_rsa92, load_v4
    from rsa_bias.plotting import save_figure
    from rsa_bias.plotting.cka import plot_cka_heatmap
    from rsa_bias.plotting.rdms import plot_rdm_row
    from rsa_bias.plotting.scores import plot_scores_with_ceiling
    from rsa_bias.store import write_results

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stimuli = trifeature_task(small=small, seed=seed)
    trained = train_trifeature_cnn(stimuli, small=small, seed=seed, progress=progress)
    models = {**random_models(seed=seed), "trained": trained.model}
    n_boot = 500 if small else 1000
    rsa92, v4 = load_rsa92(), load_v4()
    kw = {"image_size": image_size, "seed": seed}
    # the 92 images' activations serve the RSA scores, the CKA matrix and the RDM figure
    acts = all_layer_activations(models, rsa92["image"], **kw)
    results = {
        "trifeature": trifeature_variance(models, stimuli=stimuli).assign(test_accuracy=(
            "feature", [trained.history["test"]["accuracy"][f][-1] for f in HEADS])),
        "rsa_it": rsa_vs_it(models, rsa92, activations=acts, n_boot=n_boot, **kw),
        "encoding_v4": encoding_vs_v4(models, v4, n_boot=n_boot, **kw),
    }
    acts92 = {m: {layer: a for (name, layer), a in acts.items() if name == m}
              for m in ("trained", "random kaiming relu")}
    cka = cka_matrix(acts92["trained"], acts92["random kaiming relu"])
    results["cka"] = cka.rename(layer_a="layer_trained", layer_b="layer_random").to_dataset()
    run = {"run_config_json": json.dumps({"small": small, "seed": seed,
                                          "image_size": image_size}),
           "experiment": "run_model_vs_brain", "elapsed_s": round(time.perf_counter() - t0, 2)}
    paths = {}
    for name, ds in results.items():  # each result keeps its own method/config attrs
        ds.attrs = {**provenance_attrs(seed=seed, method=f"model_vs_brain/{name}"), **ds.attrs,
                    **run}
        paths[name] = write_results(ds, out_dir / f"{name}.nc")
    figures = {
        "rsa_it_png": plot_scores_with_ceiling(results["rsa_it"], ylabel="Spearman ρ with IT"),
        "encoding_v4_png": plot_scores_with_ceiling(
            results["encoding_v4"], panel=None, ceiling=None,
            ylabel="median normalised r (V4)"),
        "cka_png": plot_cka_heatmap(results["cka"]["cka"], title="linear CKA, 92 images"),
        "trifeature_png": plot_scores_with_ceiling(
            results["trifeature"].sel(model=["random kaiming relu", "trained"]), score="r2",
            hue="feature", panel="model", interval=None, ceiling=None, ylabel="R² (test)"),
        "rdms_png": plot_rdm_row(
            {"human IT (mean)": rsa92["human_it_mean"], "monkey IT": rsa92["monkey_it"],
             **{f"{m} {layer}": rdm(a[layer]) for m, a in acts92.items()
                for layer in list(a)[-1:]}}, order_by=rsa92["category"]),
    }
    for k, fig in figures.items():
        paths[k] = save_figure(fig, out_dir / k.replace("_png", ".png"), bbox_inches="tight")
    return results, paths


def run_model_vs_brain(out_dir: str | Path, *, small: bool = True, seed: int = 0,
                       image_size: int = 64, progress: bool = False) -> dict[str, Path]:
    """Run the whole networks-vs-brains comparison and write every result and figure.

    Trains the Trifeature CNN, compares it and the random-init CNNs with human and monkey
    IT (92 images) and V4 (640 images), as :func:`run_comparison` (the ``model-vs-brain``
    experiment of the registry), but returns only where the files went. ``small`` trains
    500 steps on 20 images per combination and draws 500 bootstrap samples (full: 1000
    steps, 40 per combination, 1000 samples). Writes (atomically, with provenance attrs)
    ``trifeature.nc``, ``rsa_it.nc``, ``encoding_v4.nc`` and ``cka.nc`` and the figures
    ``rsa_it.png``, ``encoding_v4.png``, ``cka.png``, ``rdms.png`` and ``trifeature.png``.

    Parameters
    ----------
    out_dir, small, seed, image_size, progress
        As in :func:`run_comparison`.

    Returns
    -------
    dict of str to pathlib.Path
        ``{name: path}`` of every file written.
    """
    return run_comparison(out_dir, small=small, seed=seed, image_size=image_size,
                          progress=progress)[1]


def brain_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """One row per model x layer: RSA with human and monkey IT and the V4 encoding score;
    ``attrs["noise_ceiling"]`` holds the human-IT ceiling ``(lower, upper)``."""
    rsa, enc = results["rsa_it"], results["encoding_v4"]
    score = rsa["score"].to_series().unstack("target")
    score.columns = [f"rsa_{t}" for t in score.columns]
    v4 = enc["score"].to_series().rename("v4_normalised_r")
    table = pd.concat([score, v4], axis=1).reset_index()
    table.attrs["noise_ceiling"] = tuple(
        float(rsa[f"noise_ceiling_{b}"].sel(target="human_it")) for b in ("lower", "upper"))
    return table

