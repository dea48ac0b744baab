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


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without CUDA")
def test_an_ensemble_asking_for_cuda_without_it_is_a_clear_error():
    from rsa_bias.training import seed_members, train_ensemble

    stimuli = make_binary_task(TaskConfig(n_distractor=3, val_size=64, test_size=64))
    cfg = TrainingConfig(steps=10, eval_every=5, snapshot_steps=(0,), device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train_ensemble(stimuli, seed_members(ModelConfig(depth=2, width=16), cfg, [0, 1]),
                       progress=False)


@pytest.mark.gpu
@requires_cuda
def test_ensemble_on_cuda_matches_sequential_runs_and_learns():
    """The batched ensemble on the GPU: each member within float32 rounding of its own
    sequential CUDA run after a short training (CUDA's batched kernels sum in another order,
    so not to the bit), and every member learns both features."""
    from rsa_bias.training import seed_members, train_ensemble

    stimuli = make_binary_task(TaskConfig(n_distractor=3, val_size=64, test_size=64))
    short = TrainingConfig(steps=50, lr=3e-3, eval_every=10, snapshot_steps=(0, 50),
                           device="cuda")
    model = ModelConfig(depth=2, width=64)
    members = train_ensemble(stimuli, seed_members(model, short, range(8)), progress=False)
    for seed, member in enumerate(members):
        alone = train(stimuli, model, short, seed=seed, progress=False)
        assert next(member.model.parameters()).is_cuda
        for layer, snap in alone.snapshots[50].items():
            np.testing.assert_allclose(member.snapshots[50][layer], snap, rtol=1e-3,
                                       atol=1e-4 * np.abs(snap).max())
        np.testing.assert_allclose(member.history["test"]["loss"]["easy"],
                                   alone.history["test"]["loss"]["easy"], rtol=1e-3)
    long = TrainingConfig(steps=1500, lr=3e-3, eval_every=500, snapshot_steps=(0,),
                          device="cuda")
    learned = train_ensemble(stimuli, seed_members(model, long, range(64)), progress=False)
    assert all(r.history["test"]["accuracy"]["easy"][-1] == 1.0 for r in learned)
