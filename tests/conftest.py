"""Small seeded fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # before anything imports matplotlib

import numpy as np
import pytest
import torch
import xarray as xr

from rsa_bias.config import FeatureSpec, ModelConfig, TaskConfig, TrainingConfig
from rsa_bias.tasks import make_binary_task

# Tiny networks train much faster on one thread than with threads fighting over busy cores.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO_ROOT / "models" / "complexity_bias.toml"


@pytest.fixture(scope="session")
def shipped_config() -> Path:
    """The experiment config shipped in ``models/``."""
    return SHIPPED_CONFIG


@pytest.fixture(scope="session")
def small_task_cfg() -> TaskConfig:
    """Easy (1 bit) + hard (4-bit parity) + 3 distractors: 256 inputs, 128 train."""
    return TaskConfig(features=(FeatureSpec("easy", "linear", 1), FeatureSpec("hard", "parity", 4)),
                      n_distractor=3, val_size=64, test_size=64, seed=0)


@pytest.fixture(scope="session")
def small_task(small_task_cfg: TaskConfig) -> xr.Dataset:
    """The dataset of ``small_task_cfg`` (shared: do not modify in place)."""
    return make_binary_task(small_task_cfg)


@pytest.fixture(scope="session")
def tiny_model_cfg() -> ModelConfig:
    return ModelConfig(depth=2, width=16)


@pytest.fixture(scope="session")
def tiny_train_cfg() -> TrainingConfig:
    return TrainingConfig(steps=30, eval_every=10, snapshot_steps=(0, 10), batch_size=32,
                          lr=3e-3, device="cpu")


def _labelled_activation(phi: np.ndarray, features: dict[str, np.ndarray],
                        split: np.ndarray | None = None, *, feature_names: list[str] | None = None,
                        ) -> xr.DataArray:
    """``phi (stimulus, unit)`` as a DataArray with ``feature_<name>`` and ``split`` coords."""
    n = phi.shape[0]
    coords: dict = {"stimulus": np.arange(n), "unit": np.arange(phi.shape[1])}
    coords.update({f"feature_{k}": ("stimulus", np.asarray(v)) for k, v in features.items()})
    if split is not None:
        coords["split"] = ("stimulus", np.asarray(split))
    act = xr.DataArray(phi, dims=("stimulus", "unit"), coords=coords)
    act.attrs["feature_names"] = feature_names or list(features)
    return act


@pytest.fixture(scope="session")
def make_activation():
    """Factory: ``make_activation(phi, {name: values}, split)`` -> labelled DataArray."""
    return _labelled_activation


@pytest.fixture
def random_activation() -> xr.DataArray:
    """Random representation of 3 random (unbalanced) 0/1 features on train/val/test."""
    rng = np.random.default_rng(12345)
    n, d = 300, 7
    f = rng.integers(0, 2, size=(n, 3))
    w = rng.normal(size=(3, d))
    phi = np.tanh(f @ w + 0.3 * rng.normal(size=(n, d))) + 0.5 * rng.normal(size=(n, d))
    split = rng.choice(np.array(["train", "val", "test"]), size=n)
    return _labelled_activation(phi, {"a": f[:, 0], "b": f[:, 1], "c": f[:, 2]}, split)


@pytest.fixture
def plotting_env():
    """For the figure tests: numpy's global generator seeded, every figure closed after."""
    import matplotlib.pyplot as plt

    np.random.seed(0)  # noqa: NPY002 - seaborn bootstraps and jitters with the global one
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def stimuli() -> xr.Dataset:
    """The factorial stimulus set of the attribution tests (test modules may define their own)."""
    from simulated_data import factorial_set

    return factorial_set()


@pytest.fixture(scope="module")
def brain(stimuli) -> xr.Dataset:
    """A simulated population coding the features of ``stimuli`` (see simulated_data)."""
    from simulated_data import simulated_brain

    return simulated_brain(stimuli)


@pytest.fixture
def no_loading(monkeypatch):
    """Loading a whole 2-D Dask array (``.values``, ``np.asarray``) raises, so a streamed
    measure that loads its input fails; 1-D coords (features, splits) may be loaded."""
    import dask.array as da

    original = da.Array.__array__

    def refuse(self, *args, **kwargs):
        if self.ndim >= 2:
            raise AssertionError(f"the whole {self.shape} dask array was loaded")
        return original(self, *args, **kwargs)
    monkeypatch.setattr(da.Array, "__array__", refuse)
