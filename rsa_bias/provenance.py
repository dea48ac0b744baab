"""Provenance attributes: how every file and every analysis result was made.

:func:`provenance_attrs` describes a file (its config, seeds, package version, commit);
:func:`result_attrs` is the one helper every public analysis result records its computation
with (the function, its method, every parameter flat and as JSON, plus the provenance).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsa_bias._version import __version__

_PACKAGE_DIR = Path(__file__).resolve().parent


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of ``git args`` in ``cwd``, or None when git fails or is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _is_own_checkout(package_dir: Path) -> bool:
    """True when ``package_dir`` sits at the top of a git work tree that is rsa_bias's own
    (its ``pyproject.toml`` names the project), not inside some other repository."""
    root = package_dir.parent
    top = _git(["rev-parse", "--show-toplevel"], root)
    if top is None or Path(top).resolve() != root.resolve():
        return False
    pyproject = root / "pyproject.toml"
    return pyproject.is_file() and 'name = "rsa_bias"' in pyproject.read_text(errors="replace")


def checkout_sha(package_dir: Path) -> str:
    """Commit of the rsa_bias checkout holding ``package_dir``.

    ``-dirty`` marks uncommitted changes to tracked files. ``"unknown"`` is returned when the
    package does not run from its own checkout (an installed copy, or a copy inside another
    repository), or when git is missing or fails.

    Parameters
    ----------
    package_dir : pathlib.Path
        The ``rsa_bias`` package folder; its parent must be the top of a git work tree
        whose ``pyproject.toml`` names the project ``rsa_bias``.

    Returns
    -------
    str
        The full commit hash of ``HEAD`` (with ``-dirty`` appended when tracked files have
        uncommitted changes), or ``"unknown"``.
    """
    if not _is_own_checkout(package_dir):
        return "unknown"
    root = package_dir.parent
    sha = _git(["rev-parse", "HEAD"], root)
    if not sha:
        return "unknown"
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return sha + ("-dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """Commit of the running rsa_bias source tree; see :func:`checkout_sha`.

    Computed once per process (cached), so later commits or edits do not change it.

    Returns
    -------
    str
        :func:`checkout_sha` of the package folder this module was imported from.
    """
    return checkout_sha(_PACKAGE_DIR)


def _base_attrs() -> dict[str, str]:
    return {
        "rsa_bias_version": __version__,
        "git_sha": git_sha(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def config_hash(config: Any) -> str:
    """The sha256 of a config's canonical JSON (the ``config_json`` of :func:`provenance_attrs`).

    Parameters
    ----------
    config : dict or object with ``to_dict()``
        The config; equal configs give equal hashes, whatever the order of their keys.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    cfg = config.to_dict() if hasattr(config, "to_dict") else config
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def provenance_attrs(config: Any = None, seed: int | list[int] | None = None,
                     method: str | None = None) -> dict[str, str]:
    """Flat attrs (strings only, netCDF-safe) describing how a file was made.

    Parameters
    ----------
    config : dict or object with ``to_dict()``, optional
        Stored as JSON under ``config_json`` and as its sha256 under ``config_hash``
        (:func:`config_hash`), which a rerun compares to tell whether the file is its own.
    seed : int or list of int, optional
        Stored as JSON under ``seed``.
    method : str, optional
        Name of the computation, stored under ``method``.

    Returns
    -------
    dict
        ``rsa_bias_version``, ``git_sha``, ``created`` and those of ``config_json`` (with
        ``config_hash``), ``seed`` and ``method`` that were given.
    """
    attrs = _base_attrs()
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else config
        attrs["config_json"] = json.dumps(cfg, sort_keys=True)
        attrs["config_hash"] = config_hash(cfg)
    if seed is not None:
        attrs["seed"] = json.dumps(seed)
    if method is not None:
        attrs["method"] = method
    return attrs


def _flat(value: Any) -> str | int | float:
    """A netCDF-safe attribute value: numbers, strings and flat lists of either as they are,
    None as ``"none"``, booleans as 0/1, other sequences and mappings as JSON, anything else as
    its ``str``."""
    if value is None:
        return "none"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _flat(value.item())
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    items = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(items, (list, tuple)) and items and (
            all(isinstance(v, str) for v in items)
            or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)):
        return list(items)  # a flat list of strings or of numbers is a netCDF attribute
    if isinstance(value, (Mapping, Sequence)) or hasattr(value, "tolist"):
        return json.dumps(value, sort_keys=True, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    """What ``json`` cannot write itself: numpy arrays and scalars as lists and numbers,
    anything else (a splitter, an estimator) as its ``str``."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def result_attrs(function: str, *, method: str | None = None, **params: Any) -> dict[str, Any]:
    """The attrs every public analysis result records: how it was computed.

    Parameters
    ----------
    function : str
        The public function that computed the result (``"evaluate_models"``).
    method : str, optional
        The measure or variant it computed (``"corr_cov"``); default ``function``.
    **params
        Every option the result depends on (``seed=``, ``n_boot=``, ...), each stored flat
        (see :func:`_flat`) and all together, with ``function`` and ``method``, as JSON
        under ``config_json``.

    Returns
    -------
    dict
        ``function``, ``method``, the flat parameters, ``config_json``,
        ``rsa_bias_version``, ``created`` and ``git_sha`` — all netCDF-safe.

    Examples
    --------
    >>> attrs = result_attrs("cka_bootstrap", n_boot=100, seed=None)
    >>> attrs["method"], attrs["seed"], attrs["n_boot"]
    ('cka_bootstrap', 'none', 100)
    """
    method = function if method is None else method
    attrs: dict[str, Any] = {k: _flat(v) for k, v in params.items()}
    attrs.update(function=function, method=method)
    attrs["config_json"] = json.dumps({"function": function, "method": method, **params},
                                      sort_keys=True, default=_json_default)
    attrs.update(_base_attrs())
    return attrs
