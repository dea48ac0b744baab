"""The only module that reads or writes files: netCDF-4 stores with schema checks.

File kinds (``attrs["rsa_bias_file"]``; layout and attrs in ``docs/architecture.md``):
``activations`` (an ``xr.DataTree``, a group per layer), ``results`` (an ``xr.Dataset``,
checked where read for an experiment: ``variables=`` of :func:`read_results`) and ``sweep`` (the
results of every point of a sweep as one ``xr.Dataset``: :func:`write_sweep`). Writes go to a
temporary file renamed into place, so a crash mid-write never leaves a half-written file under
the final name. Reads decode the file's bytes in memory: no handle outlives a read to meet
another on the same file (interleaved HDF5 handles on one file make later opens fail, or crash).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._atomic import atomic_path
from rsa_bias._features import feature_names
from rsa_bias.store.schema import (
    COMPLEXITY_BIAS_RESULTS,
    StoreError,
    _need,
    activation_tree,
    layer_activation,
    validate_activations,
    validate_results,
)

ENGINE = "netcdf4"
FILE_KIND = "rsa_bias_file"

#: What a sweep file holds (:func:`rsa_bias.experiments.sweep_result.sweep_dataset`): variable
#: -> dims it must have, besides a dim per swept factor (or ``point``).
SWEEP_RESULTS = {"r2": ("seed", "layer", "feature"), "r2_final": ("seed", "layer", "feature"),
                 "accuracy": ("seed", "split", "feature", "eval_step"),
                 "loss": ("seed", "split", "feature", "eval_step")}


def _atomic_write(obj: xr.Dataset | xr.DataTree, path: str | Path, encoding=None) -> Path:
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of the .nc file to write")
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp, engine=ENGINE, mode="w", encoding=encoding)
    return Path(path)


def _float_compression(tree: xr.DataTree, level: int) -> dict | None:
    """Per-group netCDF encoding: zlib (with byte shuffle) for every float variable."""
    if not level:
        return None
    return {node.path: {name: {"zlib": True, "complevel": level, "shuffle": True}
                        for name, var in node.dataset.data_vars.items() if var.dtype.kind == "f"}
            for node in tree.subtree if node.dataset.data_vars}


def _open(path: str | Path, opener, load: bool = True):
    """The whole file decoded from its bytes in memory (no file handle outlives the call), or
    only its root attrs (``load=False``: nothing is decoded)."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a file; give the .nc file")
    if not path.is_file():
        raise StoreError(f"{path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{path} cannot be read ({exc.strerror or exc}); check its "
                         "permissions") from exc
    try:
        with opener(data, engine=ENGINE) as obj:
            return obj.load() if load else dict(obj.attrs)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise StoreError(f"{path} is not a readable netCDF-4 file (truncated or corrupt?): "
                         f"{' '.join(str(exc).split())}. Re-run the experiment that wrote it to "
                         "regenerate it") from exc


def _open_lazy(path: Path, chunks) -> xr.DataTree:
    """The activation tree with Dask arrays over the file (kept open), for larger-than-memory
    files."""
    if not path.is_file():
        raise StoreError(f"{path} does not exist" if not path.is_dir() else
                         f"{path} is a folder, not a file; give the .nc file")
    try:
        with warnings.catch_warnings():  # chunks that split the stored ones are the caller's
            warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
            return xr.open_datatree(path, engine=ENGINE, chunks=chunks)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise StoreError(f"{path} is not a readable netCDF-4 file (truncated or corrupt?): "
                         f"{' '.join(str(exc).split())}. Re-run the extraction that wrote it "
                         "to regenerate it") from exc


def _check_kind(attrs: dict, kind: str, path: Path) -> None:
    found = attrs.get(FILE_KIND)
    if found != kind:
        raise StoreError(f"{path} is not an rsa_bias {kind} file ({FILE_KIND}={found!r})")


def write_activations(tree: xr.DataTree, path: str | Path, *, compression: int = 1) -> Path:
    """Validate and atomically write an activation tree to netCDF-4.

    The file is marked ``rsa_bias_file="activations"`` (on a copy; ``tree`` is unchanged), checked
    by :func:`validate_activations` and written through a temporary file renamed into place.

    Parameters
    ----------
    tree : xarray.DataTree
        Activations in the layout of :func:`activation_tree`.
    path : str or pathlib.Path
        The file to write (missing folders are created, an existing file replaced; not a folder).
    compression : int, default 1
        The zlib level (0-9) of the float variables; 0 writes them uncompressed. Level 1
        makes the default run's file about a third smaller for ~2 s.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StoreError
        When ``tree`` does not follow the activation schema.
    ValueError
        When ``compression`` is not a level 0..9.
    """
    _need(tree, xr.DataTree, "write_activations", "build one with activation_tree()")
    if not 0 <= compression <= 9:
        raise ValueError(f"compression must be a zlib level 0..9; got {compression}")
    tree = tree.copy()
    tree.attrs[FILE_KIND] = "activations"
    validate_activations(tree)
    return _atomic_write(tree, path, _float_compression(tree, compression))


@legacy_call(positional=("layers",))
def read_attrs(path: str | Path, *, kind: str) -> dict:
    """The root attrs of an rsa_bias file, without decoding its data (to compare its
    ``config_hash`` before reading a large file, say).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    kind : {"activations", "results"}
        The file kind it must be.

    Returns
    -------
    dict
        Its root attrs.
    """
    path = Path(path)
    attrs = _open(path, xr.open_dataset, load=False)
    _check_kind(attrs, kind, path)
    return attrs


def read_activations(path: str | Path, *, layers: Sequence[str] | None = None,
                     chunks: Mapping[str, int] | str | None = None) -> xr.DataTree:
    """Read an activation file, checking the schema.

    Parameters
    ----------
    path : str or pathlib.Path
        File written by :func:`write_activations` or
        :class:`~rsa_bias.store.stream.ActivationWriter`.
    layers : sequence of str, optional
        Layers that must be present (a clear error names any missing one; a list, not a bare
        string); default no requirement.
    chunks : mapping of dim to int, "auto" or {}, optional
        Default ``None``: the file is loaded into memory and closed. Given, the activations
        stay on disk as Dask arrays in these chunks (``{}``: the file's own chunks,
        ``{"stimulus": 10000}``: 10 000 stimuli per chunk), for files larger than memory;
        the analyses stream them (``feature_variance_explained``, linear ``cka``,
        ``streamed_ridge_scores``, ``blocked_rdm_comparison``) and
        :func:`layer_activation` keeps them lazy. The file stays open while the tree is used;
        call ``tree.close()`` when done.

    Returns
    -------
    xarray.DataTree
        The activation tree, with ``attrs["feature_names"]`` always a list of str.

    Raises
    ------
    StoreError
        When the file is missing, unreadable, not an rsa_bias activation file, or does
        not follow the schema.
    """
    path = Path(path)
    if isinstance(chunks, Mapping):
        bad = {k: v for k, v in chunks.items() if k not in ("stimulus", "unit", "seed", "step")
               or not (v == -1 or (isinstance(v, int) and v > 0))}
        if bad:
            raise ValueError(f"chunks {bad}: give positive sizes (or -1: whole) of the dims "
                             "stimulus, unit, seed or step, e.g. {'stimulus': 10000}")
    tree = _open(path, xr.open_datatree) if chunks is None else _open_lazy(path, chunks)
    _check_kind(tree.attrs, "activations", path)
    tree.attrs["feature_names"] = feature_names(tree.attrs)
    validate_activations(tree, where=str(path), layers=layers)
    return tree


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Atomically write a results Dataset to netCDF-4.

    The file is marked ``rsa_bias_file="results"`` (on a copy; ``ds`` is unchanged) and
    written through a temporary file that is renamed into place.

    Parameters
    ----------
    ds : xarray.Dataset
        Analysis results, with their provenance attrs (netCDF-safe values); not a DataArray.
    path : str or pathlib.Path
        The file to write (missing folders are created, an existing file replaced; not a folder).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    _need(ds, xr.Dataset, "write_results", "for a DataArray, pass da.to_dataset(name=...)")
    ds = ds.copy()
    ds.attrs[FILE_KIND] = "results"
    return _atomic_write(ds, path)


def read_results(path: str | Path, *,
                 variables: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                 ) -> xr.Dataset:
    """Read a results file written by :func:`write_results`, checking what it must hold.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to read; it is loaded into memory and closed.
    variables : sequence of str, or mapping of str to sequence of str, optional
        Data variables the caller needs (a clear error names any missing one; not a bare
        string); a mapping also gives the dims each must have, e.g.
        :data:`COMPLEXITY_BIAS_RESULTS` for :func:`rsa_bias.experiments.summary_table`.
        Default no requirement, so the results of every experiment are readable.

    Returns
    -------
    xarray.Dataset
        The results, with their attrs.

    Raises
    ------
    StoreError
        When the file is missing, unreadable, not an rsa_bias results file, or lacks one of
        ``variables``.
    """
    path = Path(path)
    ds = _open(path, xr.open_dataset)
    _check_kind(ds.attrs, "results", path)
    validate_results(ds, where=str(path), variables=variables)
    return ds


def write_sweep(ds: xr.Dataset, path: str | Path) -> Path:
    """Check and atomically write the results of a whole sweep to netCDF-4.

    The file is marked ``rsa_bias_file="sweep"`` (on a copy; ``ds`` is unchanged), checked to
    hold :data:`SWEEP_RESULTS` and written through a temporary file renamed into place.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`rsa_bias.experiments.sweep_result.sweep_dataset`): ``r2``,
        ``r2_final``, ``accuracy`` and ``loss`` over a dim per swept factor (or ``point``),
        with flat provenance attrs.
    path : str or pathlib.Path
        The file to write, by convention ``<sweep folder>/sweep.nc`` (missing folders are
        created, an existing file replaced; not a folder).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StoreError
        When ``ds`` lacks one of :data:`SWEEP_RESULTS` or one of its dims.
    """
    _need(ds, xr.Dataset, "write_sweep", "build one with sweep_dataset()")
    validate_results(ds, where="write_sweep", variables=SWEEP_RESULTS)
    ds = ds.copy()
    ds.attrs[FILE_KIND] = "sweep"
    return _atomic_write(ds, path)


def read_sweep(path: str | Path) -> xr.Dataset:
    """Read a sweep file written by :func:`write_sweep`, checking what it must hold.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (``sweep.nc``); it is loaded into memory and closed.

    Returns
    -------
    xarray.Dataset
        The sweep, with its attrs.

    Raises
    ------
    StoreError
        When the file is missing, unreadable (truncated, corrupt), not an rsa_bias sweep
        file, or lacks one of :data:`SWEEP_RESULTS`.
    """
    path = Path(path)
    ds = _open(path, xr.open_dataset)
    found = ds.attrs.get(FILE_KIND)
    if found != "sweep":
        raise StoreError(f"{path} is not an rsa_bias sweep file ({FILE_KIND}={found!r}); give "
                         "the sweep.nc of a sweep folder")
    validate_results(ds, where=str(path), variables=SWEEP_RESULTS)
    return ds


__all__ = ["StoreError", "activation_tree", "write_activations", "read_activations",
           "validate_activations", "layer_activation", "write_results", "read_results",
           "validate_results", "read_attrs", "COMPLEXITY_BIAS_RESULTS", "SWEEP_RESULTS",
           "write_sweep", "read_sweep"]
