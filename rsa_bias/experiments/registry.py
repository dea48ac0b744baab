"""One registry of the experiments: what each shows, how it runs, what its summary table is.

Every experiment runs through :func:`run_experiment` (the CLI verbs ``run``, ``demo`` and
``brain`` all call it) and returns an :class:`ExperimentRun`: its labelled results, the files
it wrote, its summary table and how long it took. :func:`list_experiments` lists them::

    complexity-bias  (rsa-bias run CONFIG)   train every seed of a config, feature variance
    causal-checks    (rsa-bias causal CONFIG) steering, PCs needed, read-out reliance
    loud-feature     (rsa-bias demo NAME)    RSA / CKA / encoding rank models by a loud feature
    lampinen         (rsa-bias demo NAME)    same task, less similar (Lampinen et al. 2024)
    model-vs-brain   (rsa-bias brain)        CNNs vs human / monkey IT and V4
    neural-redshift  (rsa-bias redshift CONFIG) complexity of random networks
    spectral-bias    (rsa-bias spectral CONFIG) the frequencies a ReLU MLP fits first
    init-gap         (rsa-bias init-gap CONFIG) complexity at init vs the R² gap after training
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from rsa_bias._api import choose
from rsa_bias._atomic import remove_stale_tmp
from rsa_bias.experiments import (
    bias_demos,
    causal_checks,
    complexity_bias,
    init_gap,
    model_vs_brain,
    redshift,
    spectral,
)


@dataclass
class ExperimentRun:
    """What one run of an experiment produced (returned by :func:`run_experiment`).

    Attributes
    ----------
    name : str
        The experiment's registry name.
    results : dict of str to xarray.Dataset
        Its labelled results, as written to ``paths``.
    paths : dict of str to pathlib.Path
        Every file written (results and figures).
    table : pandas.DataFrame, default empty
        The summary the CLI prints.
    elapsed_s : float, default 0.0
        Wall-clock seconds of the run.
    """

    name: str
    results: dict[str, xr.Dataset]
    paths: dict[str, Path]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: an entry of :data:`EXPERIMENTS`.

    Attributes
    ----------
    summary : str
        What it shows, in one line.
    kind : str
        ``"config"`` (run from a TOML config), ``"causal"`` (the causal checks on a
        config), ``"demo"``, ``"brain"``, ``"redshift"``, ``"spectral"`` or ``"init-gap"``:
        the CLI verb.
    run : callable
        ``run(out_dir, **options) -> (results, paths)``.
    table : callable
        ``table(results) -> pandas.DataFrame``, the summary printed by the CLI.
    """

    summary: str
    kind: str
    run: Callable[..., tuple[dict[str, xr.Dataset], dict[str, Path]]]
    table: Callable[[dict[str, xr.Dataset]], pd.DataFrame]

    def options(self) -> list[str]:
        """The keyword options :attr:`run` takes besides ``out_dir``."""
        params = inspect.signature(self.run).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


EXPERIMENTS: dict[str, Experiment] = {
    "complexity-bias": Experiment(
        "train every seed of a config (binary MLP or Trifeature CNN) and measure how much of "
        "each layer each feature takes", "config", complexity_bias.run_config,
        complexity_bias.config_table),
    "causal-checks": Experiment(
        "train every seed of a config, then steer along each feature's class-mean direction, "
        "count the top PCs a read-out needs and test which feature a read-out relies on",
        "causal", causal_checks.run_causal_config, causal_checks.causal_summary),
    "loud-feature": Experiment(
        "a simulated brain with a loud and a quiet feature: RSA, CKA and encoding rank four "
        "models by the loud feature; equalising feature variance fixes the ranking", "demo",
        bias_demos.run_loud_feature, bias_demos.loud_table),
    "lampinen": Experiment(
        "Lampinen et al. (2024): two models of the same complex task look less similar than "
        "each looks to a model of its easy feature (simulated and trained MLPs)", "demo",
        bias_demos.run_lampinen, bias_demos.lampinen_table),
    "model-vs-brain": Experiment(
        "CNNs (five random initialisations and one trained on Trifeature images) vs human and "
        "monkey IT (92 images) and V4 (640 images)", "brain", model_vs_brain.run_comparison,
        model_vs_brain.brain_table),
    "neural-redshift": Experiment(
        "Teney et al. (2024): the complexity of random MLPs on a 2D grid by activation, "
        "weight scale, depth, residuals and layer norm, and of random Transformers' "
        "generations", "redshift", redshift.run_redshift_config, redshift.redshift_table),
    "spectral-bias": Experiment(
        "Rahaman et al. (2019): a ReLU MLP fits the low frequencies of a sum of sinusoids "
        "first", "spectral", spectral.run_spectral_config, spectral.spectral_table),
    "init-gap": Experiment(
        "complexity of an MLP at initialisation against its easy/hard R² gap after training, "
        "per activation and init scale", "init-gap", init_gap.run_init_gap,
        init_gap.init_gap_table),
}


def list_experiments(kind: str | None = None) -> dict[str, str]:
    """List the registered experiments, of one ``kind`` or of all.

    Parameters
    ----------
    kind : str, optional
        ``"config"``, ``"demo"`` or ``"brain"`` (the CLI verb); ``None`` lists all.

    Returns
    -------
    dict of str to str
        Experiment name -> its one-line summary, in registry order.

    Examples
    --------
    >>> list(list_experiments("demo"))
    ['loud-feature', 'lampinen']
    """
    return {n: e.summary for n, e in EXPERIMENTS.items() if kind in (None, e.kind)}


def run_experiment(name: str, out_dir: str | Path, **options: Any) -> ExperimentRun:
    """Run a registered experiment into ``out_dir``.

    Parameters
    ----------
    name : str
        A key of :func:`list_experiments` (an unknown one is refused with the list).
    out_dir : str or pathlib.Path
        Folder for its results and figures (created if missing). Temporary files that
        interrupted writes left there (their writer is dead) are removed first, and said so.

    Other Parameters
    ----------------
    **options
        The experiment's own keyword options (:meth:`Experiment.options`); an unknown one
        is refused with the valid ones.

    Returns
    -------
    ExperimentRun
        Its results, the files it wrote, its summary table and how long it took.

    Raises
    ------
    ValueError
        For an unknown experiment or option.
    """
    exp = choose(EXPERIMENTS, name, "experiment")
    unknown = sorted(set(options) - set(exp.options()))
    if unknown:
        raise ValueError(f"experiment {name!r} has no option(s) {unknown}; valid: "
                         f"{exp.options()}")
    t0 = time.perf_counter()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out_dir, report=True)
    results, paths = exp.run(out_dir, **options)
    return ExperimentRun(name, results, paths, exp.table(results),
                         round(time.perf_counter() - t0, 2))


def run_demo(name: str, out_dir: str | Path, *, seed: int = 0, quick: bool = False,
             figures_dir: str | Path | None = None) -> tuple[xr.Dataset, list[Path]]:
    """Run a demonstration (an experiment of kind ``"demo"``) into ``out_dir``.

    Parameters
    ----------
    name : str
        A key of ``list_experiments("demo")``.
    out_dir : str or pathlib.Path
        Folder for ``results.nc`` (and the figures unless ``figures_dir`` is given).
    seed : int, default 0
        Seeds every random draw.
    quick : bool, default False
        A tiny version that runs in seconds (numbers not meaningful).
    figures_dir : str or pathlib.Path, optional
        Folder for the PNG figures (``<demo>_<figure>.png``).

    Returns
    -------
    results : xarray.Dataset
        The demo's results (as written to ``results.nc``).
    paths : list of pathlib.Path
        The written paths (results file first, then the figures).
    """
    choose(list_experiments("demo"), name, "demo")
    run = run_experiment(name, out_dir, seed=seed, quick=quick, figures_dir=figures_dir)
    return run.results["results"], list(run.paths.values())
