"""Provenance attributes recorded in every file rsa_bias writes."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from rsa_bias import __version__


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """Commit of the rsa_bias source tree, ``"unknown"`` outside a git checkout.

    A ``-dirty`` suffix marks uncommitted changes, so a result can be traced to
    exactly the code that produced it.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance_attrs(config: Any = None, seed: int | list[int] | None = None,
                     method: str | None = None) -> dict[str, str]:
    """Flat attrs (strings only, netCDF-safe) describing how a file was made.

    Parameters
    ----------
    config : dict or object with ``to_dict()``, optional
        Stored as JSON under ``config_json``.
    seed : int or list of int, optional
        Stored as JSON under ``seed``.
    method : str, optional
        Name of the computation, stored under ``method``.
    """
    attrs = {
        "rsa_bias_version": __version__,
        "git_sha": git_sha(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else config
        attrs["config_json"] = json.dumps(cfg, sort_keys=True)
    if seed is not None:
        attrs["seed"] = json.dumps(seed)
    if method is not None:
        attrs["method"] = method
    return attrs
