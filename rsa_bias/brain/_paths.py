"""Locating the real datasets shipped in the repository's ``data/`` folder.

The default is ``data/`` next to the package (``Path(rsa_bias.__file__).parents[1] / "data"``);
the environment variable ``RSA_BIAS_DATA`` points elsewhere (e.g. an installed wheel that
does not carry the data). Every loader goes through :func:`data_file`, so a missing file is
reported with the exact path that was looked for and how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

import rsa_bias

ENV_VAR = "RSA_BIAS_DATA"


def data_dir() -> Path:
    """Locate the folder holding the shipped datasets (``$RSA_BIAS_DATA`` if set).

    The default is ``data/`` next to the package (``Path(rsa_bias.__file__).parents[1] /
    "data"``), which need not exist (e.g. an installed wheel that does not carry the data);
    the loaders report a missing file with the exact path they looked for.

    Returns
    -------
    pathlib.Path
        ``$RSA_BIAS_DATA`` (with ``~`` expanded) when the variable is set and not empty,
        else the repository's ``data/`` folder.

    Raises
    ------
    FileNotFoundError
        When ``$RSA_BIAS_DATA`` names no existing folder.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={override!r} does not name an existing folder")
        return path
    return Path(rsa_bias.__file__).resolve().parents[1] / "data"


def data_file(relative: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
              ) -> Path:
    """``<root>/<relative>`` (``root`` defaults to :func:`data_dir`).

    Raises FileNotFoundError naming the path when the file is absent.
    """
    base = Path(root).expanduser() if root is not None else data_dir()
    path = base / relative
    if not path.is_file():
        where = ("the folder given" if root is not None
                 else f"the data folder (set {ENV_VAR} to use another one)")
        raise FileNotFoundError(f"{path} is missing; expected in {where}. The datasets and their "
                                "provenance are described in data/README.md")
    return path


def dataset_file(folder: str, name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """A file of a shipped dataset: ``<path>/<name>`` when the user gives the dataset's
    folder, else ``<data_dir>/<folder>/<name>``."""
    return data_file(name, path) if path is not None else data_file(f"{folder}/{name}")
