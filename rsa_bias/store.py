"""The only module that reads or writes files: netCDF-4 stores with schema checks.

File kinds (``attrs["rsa_bias_file"]``; layout in ``docs/architecture.md``): ``activations``, an
``xr.DataTree`` (root: ``stimulus`` ids, ``feature_<name>`` and ``split`` coords,
``attrs["feature_names"]``, provenance attrs ``config_json``, ``seed``, ``rsa_bias_version``,
``git_sha``, ``created``; a group per layer with ``activation([seed,] [step,] stimulus, unit)``),
and ``results``, an ``xr.Dataset`` of analysis results with the same provenance attrs, checked
where read for an experiment (``variables=`` of :func:`read_results`).

Writes go to a temporary file in the target folder, renamed into place, so a crash mid-write
never leaves a half-written file under the final name. Reads decode the file's bytes in memory:
no handle outlives a read to meet another on the same file (interleaved HDF5 handles on one file
make later opens fail, or crash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._atomic import atomic_path
from rsa_bias._features import feature_names

ENGINE = "netcdf4"
FILE_KIND = "rsa_bias_file"
#: What :func:`rsa_bias.experiments.summary_table` (and ``rsa-bias show``) reads from the
#: results of the complexity-bias experiment: variable -> dims it must have.
COMPLEXITY_BIAS_RESULTS = {"r2": ("seed", "layer", "feature"),
                           "accuracy": ("seed", "split", "feature", "eval_step")}


class StoreError(ValueError):
    """A file that is missing, unreadable or breaks the schema: a :class:`ValueError` (of the
    readers and :func:`validate_activations`) naming the file, or ``where``, and what is wrong."""


def _need(obj, cls: type, fn: str, hint: str) -> None:
    """Refuse an ``obj`` that is no ``cls`` with a TypeError that says what to pass."""
    if not isinstance(obj, cls):
        raise TypeError(f"{fn} takes an xarray.{cls.__name__}, got {type(obj).__name__}; {hint}")


def _names(v, name: str):
    """``v``, refusing a bare string (as the analysis functions do) for a list of names."""
    if isinstance(v, str | bytes):
        raise ValueError(f"{name} must be a list of names, not the string {v!r}; pass [{v!r}]")
    return v


def activation_tree(stimuli: xr.Dataset, layers: dict[str, np.ndarray], *,
                    seeds: Sequence[int] | None = None, steps: Sequence[int] | None = None,
                    attrs: dict[str, str] | None = None) -> xr.DataTree:
    """Assemble labelled activations into the activation-file layout (``docs/architecture.md``).

    Parameters
    ----------
    stimuli : xarray.Dataset with dim "stimulus"
        Its coords (feature values, split), data variables (``inputs``) and attrs go to the
        root.
    layers : dict of str -> numpy.ndarray
        Layer name -> array with dims ``([seed,] [step,] stimulus, unit)``: ``seed`` is
        present iff ``seeds`` is given, ``step`` iff ``steps`` is given; its ``stimulus``
        axis must match the stimulus set.
    seeds : sequence of int, optional
        Coordinate of a leading ``seed`` dim of every layer.
    steps : sequence of int, optional
        Coordinate of a ``step`` dim (training steps of the snapshots), after ``seed``.
    attrs : dict of str -> str, optional
        Provenance attrs for the root (e.g. :func:`rsa_bias.provenance.provenance_attrs`),
        added over the stimulus set's attrs.

    Returns
    -------
    xarray.DataTree
        Root: stimulus coords and provenance; one child per layer holding ``activation``
        (units numbered ``0..n-1``). Write it with :func:`write_activations`.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> stimuli = xr.Dataset(coords={"stimulus": np.arange(4),
    ...                              "feature_shape": ("stimulus", [0, 1, 0, 1])},
    ...                      attrs={"feature_names": ["shape"]})
    >>> tree = activation_tree(stimuli, {"hidden": np.zeros((2, 4, 3))}, seeds=[0, 1])
    >>> validate_activations(tree)
    >>> act = layer_activation(tree, "hidden")
    >>> act.dims, act.feature_shape.values.tolist()
    (('seed', 'stimulus', 'unit'), [0, 1, 0, 1])
    """
    root = stimuli.copy()
    root.attrs = {**stimuli.attrs, **(attrs or {})}
    lead = {k: np.asarray(v) for k, v in (("seed", seeds), ("step", steps)) if v is not None}
    dims = (*lead, "stimulus", "unit")
    children = {}
    for name, arr in layers.items():
        if "/" in str(name):
            raise ValueError(f"layer name {name!r} contains '/' (it separates file groups)")
        if arr.ndim != len(dims):
            raise ValueError(f"layer {name!r} has {arr.ndim} dims, expected {dims}")
        if arr.shape[-2] != stimuli.sizes["stimulus"]:
            raise ValueError(f"layer {name!r} has {arr.shape[-2]} stimuli, the stimulus set "
                             f"{stimuli.sizes['stimulus']}")
        coords = {"unit": np.arange(arr.shape[-1]), **lead}
        children[name] = xr.Dataset({"activation": (dims, arr)}, coords=coords)
    return xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in children.items()}})


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


def _open(path: str | Path, opener):
    """The whole file, decoded from its bytes in memory: no file handle outlives the call."""
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
            return obj.load()
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise StoreError(f"{path} is not a readable netCDF-4 file (truncated or corrupt?): "
                         f"{' '.join(str(exc).split())}. Re-run the experiment that wrote it to "
                         "regenerate it") from exc


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
def read_activations(path: str | Path, *, layers: Sequence[str] | None = None) -> xr.DataTree:
    """Read an activation file, checking the schema.

    Parameters
    ----------
    path : str or pathlib.Path
        File written by :func:`write_activations`; it is loaded into memory and closed.
    layers : sequence of str, optional
        Layers that must be present (a clear error names any missing one; a list, not a bare
        string); default no requirement.

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
    tree = _open(path, xr.open_datatree)
    _check_kind(tree.attrs, "activations", path)
    tree.attrs["feature_names"] = feature_names(tree.attrs)
    validate_activations(tree, where=str(path), layers=layers)
    return tree


@legacy_call(positional=("where", "layers"))
def validate_activations(tree: xr.DataTree, *, where: str = "<in memory>",
                         layers: Sequence[str] | None = None) -> None:
    """Raise :class:`StoreError` unless ``tree`` follows the activation schema.

    The root needs a ``stimulus`` coordinate, ``attrs["feature_names"]`` and a
    ``feature_<name>`` coord for each listed feature; there must be at least one layer
    group, and each holds ``activation(..., stimulus, unit)``.

    Parameters
    ----------
    tree : xarray.DataTree
        Activations in the layout of :func:`activation_tree`.
    where : str, default "<in memory>"
        What the tree is (a file name), to begin each error message with.
    layers : sequence of str, optional
        Layer groups that must be present (a list, not a bare string); default none.

    Raises
    ------
    StoreError
        Naming the first breach of the schema found.
    """
    _need(tree, xr.DataTree, "validate_activations", "build one with activation_tree()")
    root = tree.to_dataset()
    if "stimulus" not in root.coords:
        raise StoreError(f"{where}: root has no 'stimulus' coordinate")
    names = feature_names(tree.attrs)
    if not names:
        raise StoreError(f"{where}: root attrs lack 'feature_names'")
    for n in names:
        if f"feature_{n}" not in root.coords:
            raise StoreError(f"{where}: feature coord 'feature_{n}' is missing from the root "
                             f"(features listed: {names})")
    groups = list(tree.children)
    if not groups:
        raise StoreError(f"{where}: no layer groups")
    for name in _names(layers, "layers") or []:
        if name not in tree.children:
            raise StoreError(f"{where}: layer group {name!r} is missing; groups: {groups}")
    for name in groups:
        ds = tree[name].to_dataset(inherit=False)
        act = ds.get("activation")
        if act is None or act.dims[-2:] != ("stimulus", "unit"):
            raise StoreError(f"{where}: group {name!r} needs activation(..., stimulus, unit)")


def layer_activation(tree: xr.DataTree, layer: str) -> xr.DataArray:
    """One layer's ``activation`` with the root's stimulus coords attached.

    Parameters
    ----------
    tree : xarray.DataTree
        An activation tree (:func:`activation_tree`, :func:`read_activations` of a file).
    layer : str
        Name of the layer group.

    Returns
    -------
    xarray.DataArray with dims ([seed,] [step,] "stimulus", "unit")
        The layer's activations with every root coord over ``stimulus`` (ids,
        ``feature_<name>``, ``split``) and ``attrs`` holding only ``feature_names`` (a list).

    Raises
    ------
    StoreError
        When ``tree`` has no group ``layer``.
    """
    _need(tree, xr.DataTree, "layer_activation", "for a file, pass read_activations(path)")
    if layer not in tree.children:
        raise StoreError(f"no layer group {layer!r}; groups: {list(tree.children)}")
    act = tree[layer]["activation"]
    root = tree.to_dataset()
    stim = {k: root[k] for k in root.coords if root[k].dims == ("stimulus",)}
    out = act.assign_coords(stim)
    out.attrs = {"feature_names": feature_names(tree.attrs)}
    return out


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


def validate_results(ds: xr.Dataset, *, where: str = "<in memory>",
                     variables: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                     ) -> None:
    """Raise :class:`StoreError` unless ``ds`` holds the data variables a reader needs.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (:func:`read_results` or in memory).
    where : str, default "<in memory>"
        What the results are (a file name), to begin the error message with.
    variables : sequence of str, or mapping of str to sequence of str, optional
        Data variables that must be present (not a bare string); a mapping also gives the
        dims each must have (in any order, among others). Default no requirement.

    Raises
    ------
    StoreError
        Naming every missing variable (with what the results do hold and the ``method``
        that wrote them) or the first variable that lacks a dim.
    """
    if not _names(variables, "variables"):
        return
    dims = variables if isinstance(variables, Mapping) else dict.fromkeys(variables, ())
    missing = [name for name in dims if name not in ds.data_vars]
    if missing:
        raise StoreError(f"{where}: lacks the data variables {missing} these results need (it "
                         f"holds {sorted(map(str, ds.data_vars))}; written by "
                         f"method={ds.attrs.get('method')!r})")
    for name, want in dims.items():
        lacking = [d for d in want if d not in ds[name].dims]
        if lacking:
            raise StoreError(f"{where}: variable {name!r} has dims {ds[name].dims}, without "
                             f"{lacking}; it is not the {name!r} these results need")


__all__ = ["StoreError", "activation_tree", "write_activations", "read_activations",
           "validate_activations", "layer_activation", "write_results", "read_results",
           "validate_results", "COMPLEXITY_BIAS_RESULTS"]
