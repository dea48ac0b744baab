"""Conversion to and from rsatoolbox objects (rsatoolbox is imported on first use).

Stimulus ids travel as rsatoolbox observation / pattern descriptors named
``"stimulus"``; runs as the observation descriptor ``"run"``; the leading dim of
an RDM stack as an rdm descriptor. Every conversion round-trips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._values import numeric_values
from rsa_bias.analysis._inputs import as_labelled
from rsa_bias.analysis._rdm_vectors import PAIR_DIM, RDM_DIMS
from rsa_bias.analysis.rsa.crossnobis import stack_runs
from rsa_bias.analysis.rsa.forms import condensed, squareform

#: rsa_bias method name -> rsatoolbox name, for ``rdm`` and ``compare_rdms``.
RDM_METHOD_NAMES = {"sqeuclidean": "euclidean", "mahalanobis": "mahalanobis",
                    "crossnobis": "crossnobis", "correlation": "correlation"}
COMPARE_METHOD_NAMES = {"pearson": "corr", "spearman": "spearman", "rho_a": "rho-a",
                        "kendall_tau_a": "tau-a", "kendall_tau_b": "kendall",
                        "cosine": "cosine", "cosine_cov": "cosine_cov", "corr_cov": "corr_cov"}
_STACK_DIM_KEY = "rsa_bias_stack_dim"


def _rsatoolbox() -> Any:
    """rsatoolbox, imported on first use (a dependency, kept out of ``import rsa_bias``)."""
    import rsatoolbox

    return rsatoolbox


def _coords_on(da: xr.DataArray, dim: str) -> dict[str, np.ndarray]:
    return {str(k): np.asarray(c.values) for k, c in da.coords.items() if c.dims == (dim,)}


def to_rsatoolbox_dataset(x: xr.DataArray | np.ndarray, *, runs: str | None = None) -> Any:
    """An ``rsatoolbox.data.Dataset`` of labelled patterns.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", <channel>[, <run>]), or numpy.ndarray
        The patterns: one channel dim (units, voxels) and optionally a run dim. A numpy
        array ``(n_stimuli, n_channels)`` gets dims ``("stimulus", "unit")`` and stimulus
        ids ``0..n-1``.
    runs : str, optional
        Name of the run dim (default ``"run"`` when present). Runs become rows (run by
        run) with an obs descriptor ``"run"`` (the run coord, or ``0..n_runs-1``).

    Returns
    -------
    rsatoolbox.data.Dataset
        With obs descriptors ``"stimulus"`` (+ ``"run"`` and every other per-stimulus
        coord), channel descriptors from the channel dim's coords (or its index) and the
        descriptor ``"channel_dim"`` naming that dim, so that
        :func:`from_rsatoolbox_dataset` restores it.
    """
    rt = _rsatoolbox()
    x = as_labelled(x)
    run_dim = runs or ("run" if "run" in x.dims else None)
    channel = [d for d in x.dims if d not in ("stimulus", run_dim)]
    if len(channel) != 1:
        raise ValueError(f"x has dims {x.dims}; expected ('stimulus', <channel>[, run])")
    obs = _coords_on(x, "stimulus")
    if run_dim is None:
        values = x.transpose("stimulus", channel[0]).values
    else:
        values = x.transpose(run_dim, "stimulus", channel[0]).values
        n_runs = values.shape[0]
        values = values.reshape(-1, values.shape[-1])
        obs = {k: np.tile(v, n_runs) for k, v in obs.items()}
        labels = x[run_dim].values if run_dim in x.coords else np.arange(n_runs)
        obs["run"] = np.repeat(labels, x.sizes["stimulus"])
    chans = _coords_on(x, channel[0]) or {channel[0]: np.arange(values.shape[1])}
    values = numeric_values(values, "x", finite=False)
    if np.isinf(values).any():
        raise ValueError("x contains inf; drop those stimuli/channels (NaN marks a missing "
                         "value and is kept)")
    return rt.data.Dataset(values, obs_descriptors=obs, channel_descriptors=chans,
                           descriptors={"channel_dim": channel[0]})


def from_rsatoolbox_dataset(ds: Any, *, run_descriptor: str | None = None) -> xr.DataArray:
    """Labelled patterns from an ``rsatoolbox.data.Dataset``.

    Parameters
    ----------
    ds : rsatoolbox.data.Dataset
        Its obs descriptor ``"stimulus"`` (if any) gives the stimulus ids, otherwise rows
        are numbered; its other obs descriptors (but ``"index"``) become per-stimulus coords
        and its channel descriptors coords of the channel dim, named by the descriptor
        ``"channel_dim"`` (default ``"unit"``).
    run_descriptor : str, optional
        Obs descriptor holding the run of each row; default ``"run"`` when present. Then
        the result has a ``run`` dim (rows stacked by
        :func:`~rsa_bias.analysis.rsa.crossnobis.stack_runs`).

    Returns
    -------
    xarray.DataArray with dims ("stimulus", <channel>) or ("run", "stimulus", <channel>)
        The measurements, labelled by stimulus id (and run).
    """
    obs = {k: np.asarray(v) for k, v in ds.obs_descriptors.items()}
    channel = str(ds.descriptors.get("channel_dim", "unit"))
    run_descriptor = run_descriptor or ("run" if "run" in obs else None)
    ids = obs.pop("stimulus", np.arange(ds.n_obs))
    if run_descriptor is not None:
        out = stack_runs(ds.measurements, runs=obs.pop(run_descriptor), stimulus_ids=ids)
        first: dict[Any, int] = {}
        for row, sid in enumerate(ids.tolist()):
            first.setdefault(sid, row)
        rows = [first[sid] for sid in out["stimulus"].values.tolist()]
        per_stimulus = {k: ("stimulus", v[rows]) for k, v in obs.items() if k != "index"}
        return (out.rename(unit=channel)
                .assign_coords({**per_stimulus, **_channel_coords(ds, channel)}))
    coords: dict[str, Any] = {"stimulus": ids}
    coords.update({k: ("stimulus", v) for k, v in obs.items() if k != "index"})
    coords.update(_channel_coords(ds, channel))
    return xr.DataArray(ds.measurements, dims=("stimulus", channel), coords=coords)


def _channel_coords(ds: Any, channel: str) -> dict[str, Any]:
    return {k: (channel, np.asarray(v)) for k, v in ds.channel_descriptors.items()}


def to_rsatoolbox_rdms(r: xr.DataArray) -> Any:
    """An ``rsatoolbox.rdm.RDMs`` from a labelled RDM or a stack with one leading dim.

    Stimulus ids become the pattern descriptor ``"stimulus"`` (per-stimulus
    coords ``<name>_i`` become descriptors ``<name>``); the leading dim's
    coords become rdm descriptors.

    Parameters
    ----------
    r : xarray.DataArray with dims ([<stack>,] "stimulus_i", "stimulus_j")
        A square RDM or a stack of them with one leading dim (stack several into one
        first), or its condensed form with dims ([<stack>,] "pair") as from
        :func:`~rsa_bias.analysis.rsa.forms.condensed`. ``attrs["method"]`` (if any) becomes
        the dissimilarity measure.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        One RDM per entry of the leading dim (or one), in rsatoolbox's vector order; the
        name of the leading dim is recorded so that :func:`from_rsatoolbox_rdms` restores
        it.
    """
    rt = _rsatoolbox()
    vec = r if PAIR_DIM in r.dims else condensed(r)
    lead = [str(d) for d in vec.dims if d != PAIR_DIM]
    if len(lead) > 1:
        raise ValueError(f"RDM stack has leading dims {lead}; stack them into one first "
                         "(e.g. r.stack(rdm=[...]).reset_index('rdm'))")
    square = squareform(vec)
    patterns = {"stimulus": square["stimulus_i"].values}
    patterns.update({k[:-2]: np.asarray(c.values) for k, c in r.coords.items()
                     if k.endswith("_i") and k != "stimulus_i" and c.dims == ("stimulus_i",)})
    descriptors: dict[str, Any] = {}
    rdm_desc: dict[str, Any] = {}
    if lead:
        descriptors[_STACK_DIM_KEY] = lead[0]
        rdm_desc = _coords_on(vec, lead[0])
    return rt.rdm.RDMs(np.atleast_2d(vec.values), dissimilarity_measure=r.attrs.get("method"),
                       descriptors=descriptors, rdm_descriptors=rdm_desc or None,
                       pattern_descriptors=patterns)


def from_rsatoolbox_rdms(rdms: Any, *, dim: str | None = None) -> xr.DataArray:
    """Labelled square RDM(s) from an ``rsatoolbox.rdm.RDMs``.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs
        Its pattern descriptor ``"stimulus"`` (if any) gives the ids (else ``0..n-1``),
        other pattern descriptors (but ``"index"``) become ``<name>_i``/``<name>_j`` coords,
        and its dissimilarity measure ``attrs["method"]``.
    dim : str, optional
        Name of the leading dim. Default: the one recorded by
        :func:`to_rsatoolbox_rdms`, else none for a single RDM and ``"rdm"`` for
        several. Its rdm descriptors (but ``"index"``) become coords on it.

    Returns
    -------
    xarray.DataArray with dims ([dim,] "stimulus_i", "stimulus_j")
        Named ``"rdm"``, with a zero diagonal.
    """
    dim = dim or rdms.descriptors.get(_STACK_DIM_KEY)
    if dim is None and rdms.n_rdm > 1:
        dim = "rdm"
    patterns = {k: np.asarray(v) for k, v in rdms.pattern_descriptors.items()}
    ids = patterns.pop("stimulus", np.arange(rdms.n_cond))
    square = squareform(np.asarray(rdms.get_vectors(), dtype=np.float64))
    coords: dict[str, Any] = {"stimulus_i": ids, "stimulus_j": ids}
    for k, v in patterns.items():
        if k != "index":
            coords.update({f"{k}_i": ("stimulus_i", v), f"{k}_j": ("stimulus_j", v)})
    attrs = {"method": str(rdms.dissimilarity_measure)} if rdms.dissimilarity_measure else {}
    if dim is None:
        return xr.DataArray(square[0], dims=RDM_DIMS, coords=coords, name="rdm", attrs=attrs)
    coords.update({k: (dim, np.asarray(v)) for k, v in rdms.rdm_descriptors.items()
                   if k != "index" or k == dim})
    return xr.DataArray(square, dims=(dim, *RDM_DIMS), coords=coords, name="rdm", attrs=attrs)


__all__ = ["to_rsatoolbox_dataset", "from_rsatoolbox_dataset", "to_rsatoolbox_rdms",
           "from_rsatoolbox_rdms", "RDM_METHOD_NAMES", "COMPARE_METHOD_NAMES"]
