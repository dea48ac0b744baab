"""Activation files written batch by batch, for activations larger than memory.

:class:`ActivationWriter` writes the layout of :func:`rsa_bias.store.write_activations` (a root
group with the stimulus coords and provenance, one group per layer holding
``activation(stimulus, unit)``), but a batch of stimuli at a time: the root is written first,
each layer's variable is created, chunked along ``stimulus``, when its first batch arrives, and
every batch goes straight to disk. Nothing but the current batch is held in memory. The file is
written under a temporary name renamed into place by :meth:`ActivationWriter.close` once every
layer holds every stimulus, so a crash or kill mid-run never leaves a half-written file under
the final name. Read it back lazily with ``read_activations(path, chunks={})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import xarray as xr

from rsa_bias._atomic import atomic_path
from rsa_bias._features import feature_names
from rsa_bias.store.schema import StoreError

#: Target size of one stored chunk (rows x units x 4 bytes): large enough for fast reads,
#: small enough that reading one chunk is cheap.
CHUNK_BYTES = 4 * 2**20


def chunk_rows(n_stimuli: int, n_units: int, itemsize: int = 4) -> int:
    """Rows of a stored chunk of a layer of ``n_units``: about :data:`CHUNK_BYTES`, at least 1
    and at most ``n_stimuli``."""
    return int(max(1, min(n_stimuli, CHUNK_BYTES // max(1, n_units * itemsize))))


class ActivationWriter:
    """Write an activation file batch by batch (a context manager).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.nc`` file to write (missing folders are created; an existing file is replaced
        only when the writer closes successfully).
    stimuli : xarray.Dataset with dim "stimulus"
        The stimulus set in the order batches will arrive: its ``stimulus`` coord, the coords
        over ``stimulus`` (``feature_<name>``, ``split``) and its attrs go to the root (its data
        variables, such as the images, are left out). ``attrs["feature_names"]`` lists its
        features (an empty list for stimuli without feature labels).
    attrs : mapping of str to str or number, optional
        Provenance for the root (:func:`rsa_bias.provenance.provenance_attrs`, the extraction
        settings), added over the stimulus set's attrs.
    dtype : {"float32", "float64"}, default "float32"
        How activations are stored.
    compression : int, default 0
        zlib level 0..9 of the activations (0: none; compression costs time on large files).

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from rsa_bias.store import read_activations
    >>> stimuli = xr.Dataset(coords={"stimulus": np.arange(6),
    ...                              "feature_a": ("stimulus", [0, 1, 0, 1, 0, 1])},
    ...                      attrs={"feature_names": ["a"]})
    >>> path = tempfile.mkdtemp() + "/acts.nc"
    >>> with ActivationWriter(path, stimuli) as w:
    ...     for start in (0, 4):
    ...         w.append({"fc": np.full((min(4, 6 - start), 3), start, dtype="float32")})
    >>> tree = read_activations(path, chunks={})
    >>> tree["fc"]["activation"].values[:, 0].tolist()
    [0.0, 0.0, 0.0, 0.0, 4.0, 4.0]
    """

    def __init__(self, path: str | Path, stimuli: xr.Dataset, *,
                 attrs: Mapping[str, object] | None = None, dtype: str = "float32",
                 compression: int = 0) -> None:
        if not isinstance(stimuli, xr.Dataset) or "stimulus" not in stimuli.dims:
            raise TypeError("stimuli must be an xarray.Dataset with a 'stimulus' dim (the "
                            f"stimulus set); got {type(stimuli).__name__}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
        if not 0 <= compression <= 9:
            raise ValueError(f"compression must be a zlib level 0..9; got {compression}")
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a folder; give the path of the .nc file")
        ids = stimuli["stimulus"].values
        if len(np.unique(ids)) != len(ids):
            values, counts = np.unique(ids, return_counts=True)
            raise StoreError(f"stimulus ids repeat (e.g. {values[counts > 1][:3].tolist()}); "
                             "every stimulus "
                             "needs its own id, or the analyses cannot align it")
        self.path = Path(path)
        self.n = int(stimuli.sizes["stimulus"])
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self._written: dict[str, int] = {}
        self._layers: list[str] = []
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            root = self._root(stimuli, attrs or {})
            root.to_netcdf(self._tmp, engine="netcdf4", mode="w")
            import netCDF4

            self._nc = netCDF4.Dataset(self._tmp, mode="a")
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise

    @staticmethod
    def _root(stimuli: xr.Dataset, attrs: Mapping[str, object]) -> xr.Dataset:
        coords = {k: v for k, v in stimuli.coords.items() if v.dims == ("stimulus",)}
        root = xr.Dataset(coords=coords)
        names = feature_names(stimuli.attrs)
        missing = [n for n in names if f"feature_{n}" not in root.coords]
        if missing:
            raise StoreError(f"stimuli list the features {missing} but have no "
                             f"feature_<name> coords for them")
        root.attrs = {**stimuli.attrs, **dict(attrs), "rsa_bias_file": "activations",
                      "feature_names": names if names else ""}
        return root

    def append(self, batch: Mapping[str, np.ndarray]) -> None:
        """Write the next rows of every layer.

        Parameters
        ----------
        batch : mapping of str to numpy.ndarray
            Layer name -> ``(rows, units)`` activations of the next stimuli, in the stimulus
            set's order. Each call holds the same layers (the first call fixes them and their
            unit counts); the rows of one call may differ between layers only if every layer
            still ends with every stimulus.

        Raises
        ------
        StoreError
            A layer not in the first batch (or one missing), a unit count that changed, more
            rows than stimuli, non-finite values.
        """
        if not self._layers:
            self._create(batch)
        if set(batch) != set(self._layers):
            raise StoreError(f"batch holds the layers {sorted(batch)}; every batch must hold "
                             f"{sorted(self._layers)}, as the first did")
        for name, arr in batch.items():
            arr = np.asarray(arr)
            var = self._nc[name]["activation"]
            if arr.ndim != 2 or arr.shape[1] != var.shape[1]:
                raise StoreError(f"layer {name!r}: batch of shape {arr.shape}; expected (rows, "
                                 f"{var.shape[1]}) as in the first batch")
            start = self._written[name]
            if start + len(arr) > self.n:
                raise StoreError(f"layer {name!r}: {start + len(arr)} rows for {self.n} "
                                 "stimuli; more activations than stimuli")
            if not np.all(np.isfinite(arr)):
                raise StoreError(f"layer {name!r}: NaN or inf activations in rows "
                                 f"{start}..{start + len(arr) - 1}; check the model's inputs")
            var[start:start + len(arr), :] = arr.astype(self.dtype, copy=False)
            self._written[name] = start + len(arr)

    def _create(self, batch: Mapping[str, np.ndarray]) -> None:
        if not batch:
            raise StoreError("the first batch holds no layers")
        for name, arr in batch.items():
            if "/" in str(name) or not str(name):
                raise StoreError(f"layer name {name!r} is empty or contains '/' (it separates "
                                 "file groups)")
            units = int(np.shape(arr)[1]) if np.ndim(arr) == 2 else 0
            if not units:
                raise StoreError(f"layer {name!r}: batch of shape {np.shape(arr)}; expected "
                                 "(rows, units)")
            group = self._nc.createGroup(name)
            group.createDimension("unit", units)
            unit = group.createVariable("unit", "i8", ("unit",))
            unit[:] = np.arange(units)
            group.createVariable(
                "activation", self.dtype, ("stimulus", "unit"), fill_value=np.nan,
                zlib=bool(self.compression), complevel=self.compression or 1,
                shuffle=bool(self.compression),
                chunksizes=(chunk_rows(self.n, units, self.dtype.itemsize), units))
            self._written[name] = 0
            self._layers.append(name)

    def close(self) -> Path:
        """Finish the file and rename it into place.

        Returns
        -------
        pathlib.Path
            The written file.

        Raises
        ------
        StoreError
            When no batch was written or a layer lacks some stimuli (the temporary file is
            removed and nothing appears under the final name).
        """
        short = {k: v for k, v in self._written.items() if v != self.n}
        error = None
        if not self._layers:
            error = StoreError(f"{self.path}: no activations were appended")
        elif short:
            error = StoreError(f"{self.path}: layers {short} hold fewer rows than the "
                               f"{self.n} stimuli; the file was not written")
        self._nc.close()
        if error is not None:
            self._ctx.__exit__(StoreError, error, None)
            raise error
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Remove the temporary file; nothing appears under the final name."""
        try:
            self._nc.close()
        finally:
            Path(self._tmp).unlink(missing_ok=True)
            err = RuntimeError("aborted")
            try:
                self._ctx.__exit__(RuntimeError, err, None)
            except RuntimeError:
                pass

    def __enter__(self) -> ActivationWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

