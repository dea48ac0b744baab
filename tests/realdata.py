"""Path to a real dataset shipped in the repository's ``data/`` folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


def data_file(relative: str) -> Path:
    """``data/<relative>``; fails (not skips) when missing, since the data ship with the repo."""
    path = DATA / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; the reference tests need the shipped data "
                                "(see data/README.md)")
    return path


def rsa92_rdms():
    """Human-IT RDMs (8 = 4 subjects x 2 sessions) and the 8 model RDMs of the 92 images,
    as ``(subject|model, stimulus_i, stimulus_j)`` DataArrays with image ids 1..92."""
    import numpy as np
    import scipy.io
    import xarray as xr

    brain = scipy.io.loadmat(data_file("rsa92_kriegeskorte2008/92_brainRDMs.mat"))["RDMs"]
    models = scipy.io.loadmat(data_file("rsa92_kriegeskorte2008/92_modelRDMs.mat"))["Models"][0]
    ids = np.arange(1, 93)
    hit = np.stack([brain[0, s, r]["RDM"].astype(float) for s in range(4) for r in range(2)])
    subject = [f"{s}{r}" for s in ("BE", "KO", "SN", "TI") for r in (1, 2)]
    mod = np.stack([m["RDM"].astype(float) for m in models])
    names = [str(m["name"][0]) for m in models]
    return (xr.DataArray(hit, dims=("subject", "stimulus_i", "stimulus_j"),
                         coords={"subject": subject, "stimulus_i": ids, "stimulus_j": ids}),
            xr.DataArray(mod, dims=("model", "stimulus_i", "stimulus_j"),
                         coords={"model": names, "stimulus_i": ids, "stimulus_j": ids}))


def copy_files(src: Path, names, dst: Path, skip: str | None = None) -> Path:
    """Copy ``names`` from ``src`` into ``dst`` (all but ``skip``); return ``dst``."""
    import shutil

    for name in names:
        if name != skip:
            shutil.copyfile(src / name, dst / name)
    return dst


def small_problem() -> tuple[np.ndarray, np.ndarray]:
    """Not recorded data: 3 model RDM vectors (one coarse, with ties) and 4 subjects' over 8
    stimuli, for the inference tests."""
    rng = np.random.default_rng(1)
    x = rng.random((3, 28))
    x[1] = np.round(x[1] * 3)
    y = rng.random((4, 28)) + 0.8 * x[0]
    return x, y
