"""GPU path of the training loop (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsa_bias.config import ModelConfig, TaskConfig, TrainingConfig
from rsa_bias.tasks import make_binary_task
from rsa_bias.training import resolve_device, train

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_auto_device_matches_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.gpu
@requires_cuda
def test_training_on_cuda_learns_and_returns_cpu_snapshots():
    stimuli = make_binary_task(TaskConfig(n_distractor=3, val_size=64, test_size=64))
    cfg = TrainingConfig(steps=1500, lr=3e-3, eval_every=500, snapshot_steps=(0,), device="cuda")
    result = train(stimuli, ModelConfig(depth=2, width=64), cfg, seed=0, progress=False)
    assert next(result.model.parameters()).is_cuda
    assert result.history["test"]["accuracy"]["easy"][-1] == 1.0
    snap = result.snapshots[1500]["hidden_1"]
    assert isinstance(snap, np.ndarray) and snap.shape == (128, 64)
