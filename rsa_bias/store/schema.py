"""The in-memory schemas of the store's two file kinds, with no file I/O: the activation tree
(:func:`activation_tree`, :func:`validate_activations`, :func:`layer_activation`) and what a
results reader needs (:func:`validate_results`). :mod:`rsa_bias.store` reads and writes them and
re-exports everything here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._features import feature_names
from rsa_bias._values import check_names

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
    if "feature_names" not in tree.attrs:
        raise StoreError(f"{where}: root attrs lack 'feature_names'")
    for n in names:
        if f"feature_{n}" not in root.coords:
            raise StoreError(f"{where}: feature coord 'feature_{n}' is missing from the root "
                             f"(features listed: {names})")
    groups = list(tree.children)
    if not groups:
        raise StoreError(f"{where}: no layer groups")
    for name in check_names(layers, "layers", allow_empty=True) if layers is not None else []:
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
    if variables is None or not check_names(variables, "variables", allow_empty=True):
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
