"""Shared pieces of the ensemble tests (test_ensemble.py, test_ensemble_cnn.py)."""

from __future__ import annotations

import numpy as np
import torch

from rsa_bias.analysis import feature_variance_explained
from rsa_bias.config import CNNConfig, ImageTaskConfig, ModelConfig, TaskConfig, TrainingConfig
from rsa_bias.store import activation_tree, layer_activation
from rsa_bias.tasks import make_image_task
from rsa_bias.training import TrainResult


def assert_same_result(a: TrainResult, b: TrainResult) -> None:
    """Bit-identical: curves, snapshots and final parameters and buffers."""
    assert a.seed == b.seed
    assert type(a.model) is type(b.model)
    assert a.eval_steps == b.eval_steps
    assert a.history == b.history
    assert a.snapshots.keys() == b.snapshots.keys()
    for step, layers in a.snapshots.items():
        assert layers.keys() == b.snapshots[step].keys()
        for name, arr in layers.items():
            assert np.array_equal(arr, b.snapshots[step][name]), f"snapshot {step} {name}"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def assert_close_result(a: TrainResult, b: TrainResult, *, rtol: float, atol: float) -> None:
    """Equal up to ``rtol``/``atol``: curves, snapshots, parameters and BN running stats
    (integer buffers such as ``num_batches_tracked`` exactly)."""
    assert a.seed == b.seed and a.eval_steps == b.eval_steps
    for split, metrics in b.history.items():
        for metric, features in metrics.items():
            for name, values in features.items():
                np.testing.assert_allclose(a.history[split][metric][name], values, rtol=rtol,
                                           atol=atol, err_msg=f"{split} {metric} {name}")
    assert a.snapshots.keys() == b.snapshots.keys()
    for step, layers in b.snapshots.items():
        for name, arr in layers.items():
            np.testing.assert_allclose(a.snapshots[step][name], arr, rtol=rtol, atol=atol,
                                       err_msg=f"snapshot {step} {name}")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sb.items():
        if v.dtype.is_floating_point:
            np.testing.assert_allclose(sa[k].numpy(), v.numpy(), rtol=rtol, atol=atol,
                                       err_msg=k)
        else:
            assert torch.equal(sa[k], v), k


def _r2_by_layer(results: list[TrainResult], stimuli, mask) -> dict[str, np.ndarray]:
    """The R² (layer -> (seed, step, feature)) of the results' snapshots, as the experiment
    computes it (activation tree -> layer_activation -> feature_variance_explained)."""
    steps = sorted(results[0].snapshots)
    layers = results[0].model.layer_names
    arrays = {name: np.stack([np.stack([r.snapshots[s][name] for s in steps])
                              for r in results]) for name in layers}
    tree = activation_tree(stimuli.isel(stimulus=mask), arrays,
                           seeds=[r.seed for r in results], steps=steps)
    return {name: feature_variance_explained(layer_activation(tree, name)).r2.values
            for name in layers}


def image_task():
    """162 12-pixel images of 3 colours x 3 shapes x 3 textures (108 train)."""
    return make_image_task(TaskConfig(kind="images", n_train=108, val_size=27, test_size=27,
                                      images=ImageTaskConfig(size=12, jitter=1)))


MLP = ModelConfig(depth=2, width=16)
SHORT = TrainingConfig(steps=40, eval_every=10, snapshot_steps=(0, 15), batch_size=32, lr=3e-3,
                       device="cpu")
SEEDS = [4, 0, 7]  # not 0, 1, 2: a seed mixed up with a member's index shows
CNN_STEPS, RTOL, ATOL = 20, 5e-5, 5e-6


def _cnn_configs(norm: str, optimizer: str, lr: float) -> tuple[ModelConfig, TrainingConfig]:
    model = ModelConfig(arch="cnn", cnn=CNNConfig(channels=(4, 8), fc_widths=(16,), norm=norm,
                                                  groups=2))
    cfg = TrainingConfig(steps=CNN_STEPS, eval_every=5, snapshot_steps=(0, 10), batch_size=16,
                         optimizer=optimizer, lr=lr, momentum=0.9, device="cpu")
    return model, cfg


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
