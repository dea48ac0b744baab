"""Training: bit-identical reruns, learning, resumable checkpoints."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from ensemble_helpers import assert_same_result

import rsa_bias.training.loop as loop
from rsa_bias.config import ModelConfig, TrainingConfig
from rsa_bias.networks import build_mlp
from rsa_bias.training import resolve_device, train
from rsa_bias.training.activations import capture
from rsa_bias.training.checkpoint import load_checkpoint, save_checkpoint


def _eval_inputs(stimuli):
    mask = np.isin(stimuli.split.values, ("val", "test"))
    return torch.as_tensor(stimuli.inputs.values[mask])


def _accuracy(model, stimuli, split: str, feature: str) -> float:
    mask = stimuli.split.values == split
    with torch.no_grad():
        model.eval()
        logits = model(torch.as_tensor(stimuli.inputs.values[mask]))[feature].numpy()
    return float(np.mean((logits > 0) == stimuli[f"feature_{feature}"].values[mask]))


# --- reproducibility -------------------------------------------------------------------------


def test_same_seed_is_bit_identical(small_task, tiny_train_cfg):
    model_cfg = ModelConfig(depth=2, width=16, dropout=0.1)
    a = train(small_task, model_cfg, tiny_train_cfg, seed=3, progress=False)
    b = train(small_task, model_cfg, tiny_train_cfg, seed=3, progress=False)
    assert_same_result(a, b)


def test_different_seeds_differ(small_task, tiny_model_cfg, tiny_train_cfg):
    a = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, progress=False)
    b = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=1, progress=False)
    for step in a.snapshots:
        assert not np.array_equal(a.snapshots[step]["hidden_0"], b.snapshots[step]["hidden_0"])
    assert a.history["val"]["loss"]["easy"] != b.history["val"]["loss"]["easy"]


# --- what is recorded ------------------------------------------------------------------------


def test_records_schedule_and_shapes(small_task, tiny_model_cfg):
    cfg = TrainingConfig(steps=25, eval_every=10, snapshot_steps=(0, 5), batch_size=16,
                         device="cpu")
    res = train(small_task, tiny_model_cfg, cfg, seed=0, progress=False)
    assert res.eval_steps == [0, 10, 20, 25]
    for split in ("val", "test"):
        for metric in ("accuracy", "loss"):
            for name in ("easy", "hard"):
                assert len(res.history[split][metric][name]) == 4
    assert sorted(res.snapshots) == [0, 5, 25]
    n_eval = int(np.isin(small_task.split.values, ("val", "test")).sum())
    for layers in res.snapshots.values():
        assert sorted(layers) == ["hidden_0", "hidden_1"]
        for arr in layers.values():
            assert arr.shape == (n_eval, tiny_model_cfg.width)


def test_snapshots_are_the_model_at_those_steps(small_task, tiny_model_cfg, tiny_train_cfg):
    res = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=4, progress=False)
    x = _eval_inputs(small_task)
    torch.manual_seed(4)
    init = build_mlp(small_task.sizes["input"], ["easy", "hard"], tiny_model_cfg)
    for name, arr in capture(init, x, init.layer_names).items():
        np.testing.assert_array_equal(res.snapshots[0][name], arr)
    final = capture(res.model, x, res.model.layer_names)
    for name, arr in final.items():
        np.testing.assert_array_equal(res.snapshots[tiny_train_cfg.steps][name], arr)


def test_custom_snapshot_mask(small_task, tiny_model_cfg, tiny_train_cfg):
    mask = small_task.split.values == "train"
    res = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, snapshot_mask=mask,
                progress=False)
    x = torch.as_tensor(small_task.inputs.values[mask])
    final = capture(res.model, x, ["hidden_1"])["hidden_1"]
    np.testing.assert_array_equal(res.snapshots[tiny_train_cfg.steps]["hidden_1"], final)


def test_history_matches_recomputed_accuracy(small_task, tiny_model_cfg, tiny_train_cfg):
    res = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=2, progress=False)
    for split in ("val", "test"):
        for name in ("easy", "hard"):
            assert res.history[split]["accuracy"][name][-1] == pytest.approx(
                _accuracy(res.model, small_task, split, name), abs=1e-6)


def test_learns_single_bit_feature_to_full_test_accuracy(small_task):
    cfg = TrainingConfig(optimizer="adam", lr=3e-3, steps=600, eval_every=200,
                         snapshot_steps=(0,), batch_size=64, device="cpu")
    res = train(small_task, ModelConfig(depth=2, width=64), cfg, seed=0, progress=False)
    assert res.history["test"]["accuracy"]["easy"][-1] == 1.0
    assert res.history["val"]["accuracy"]["easy"][-1] == 1.0
    assert res.history["test"]["loss"]["easy"][-1] < res.history["test"]["loss"]["easy"][0]
    assert _accuracy(res.model, small_task, "test", "easy") == 1.0


def test_sgd_optimizer_is_used(small_task, tiny_model_cfg, tiny_train_cfg):
    sgd = dataclasses.replace(tiny_train_cfg, optimizer="sgd", lr=0.05)
    a = train(small_task, tiny_model_cfg, sgd, seed=0, progress=False)
    b = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, progress=False)
    assert not np.array_equal(a.snapshots[sgd.steps]["hidden_1"],
                              b.snapshots[sgd.steps]["hidden_1"])


# --- checkpoints -----------------------------------------------------------------------------


class _Interrupted(Exception):
    pass


@pytest.fixture
def resume_cfg() -> tuple[ModelConfig, TrainingConfig]:
    return (ModelConfig(depth=2, width=16, dropout=0.2),
            TrainingConfig(steps=30, eval_every=10, snapshot_steps=(0, 10, 20), batch_size=16,
                           checkpoint_every=5, lr=3e-3, device="cpu"))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("stop_at", [10, 15, 30])
def test_resume_after_interruption_is_identical(small_task, resume_cfg, tmp_path, monkeypatch,
                                                 stop_at, optimizer):
    model_cfg, cfg = resume_cfg
    cfg = dataclasses.replace(cfg, optimizer=optimizer)
    reference = train(small_task, model_cfg, cfg, seed=1, progress=False)

    real_save = loop.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if state["step"] == stop_at:
            raise _Interrupted

    ckpt = tmp_path / "seed_1.pt"
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupted):
        train(small_task, model_cfg, cfg, seed=1, checkpoint=ckpt, config_json="cfg",
              progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert torch.load(ckpt, weights_only=True)["step"] == stop_at

    batches = []
    real_losses = loop._losses

    def counting_losses(model, x, y, names, *weights):
        if len(x) == cfg.batch_size:
            batches.append(len(x))
        return real_losses(model, x, y, names, *weights)

    monkeypatch.setattr(loop, "_losses", counting_losses)
    torch.manual_seed(12345)  # the resumed run must not depend on the global RNG state
    resumed = train(small_task, model_cfg, cfg, seed=1, checkpoint=ckpt, config_json="cfg",
                    progress=False)
    assert len(batches) == cfg.steps - stop_at  # it resumed rather than starting over
    assert_same_result(reference, resumed)


def test_mid_run_checkpoint_copy_resumes_identically(small_task, resume_cfg, tmp_path,
                                                     monkeypatch):
    model_cfg, cfg = resume_cfg
    real_save = loop.save_checkpoint
    ckpt, copy = tmp_path / "run.pt", tmp_path / "copy.pt"

    def save_and_copy(state, path):
        real_save(state, path)
        if state["step"] == 20:
            shutil.copy(path, copy)

    monkeypatch.setattr(loop, "save_checkpoint", save_and_copy)
    full = train(small_task, model_cfg, cfg, seed=2, checkpoint=ckpt, progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    resumed = train(small_task, model_cfg, cfg, seed=2, checkpoint=copy, progress=False)
    assert_same_result(full, resumed)
    assert_same_result(full, train(small_task, model_cfg, cfg, seed=2, progress=False))


def test_finished_checkpoint_returns_finished_run(small_task, resume_cfg, tmp_path):
    model_cfg, cfg = resume_cfg
    ckpt = tmp_path / "seed.pt"
    first = train(small_task, model_cfg, cfg, seed=0, checkpoint=ckpt, progress=False)
    again = train(small_task, model_cfg, cfg, seed=0, checkpoint=ckpt, progress=False)
    assert_same_result(first, again)


def test_checkpoint_loads_with_weights_only(small_task, tiny_model_cfg, tiny_train_cfg, tmp_path):
    ckpt = tmp_path / "c.pt"
    res = train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, checkpoint=ckpt,
                config_json='{"x": 1}', progress=False)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == tiny_train_cfg.steps
    assert state["config_json"] == '{"x": 1}'
    for k, v in res.model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp files left


def test_checkpoint_of_other_config_refused(small_task, tiny_model_cfg, tiny_train_cfg, tmp_path):
    ckpt = tmp_path / "c.pt"
    train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, checkpoint=ckpt,
          config_json='{"steps": 30}', progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, checkpoint=ckpt,
              config_json='{"steps": 31}', progress=False)
    with pytest.raises(ValueError, match="different config"):
        load_checkpoint(ckpt, config_json="{}")
    assert load_checkpoint(ckpt, config_json='{"steps": 30}')["step"] == 30


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10], ids=["empty", "junk"])
def test_corrupt_checkpoint_gives_clear_error(small_task, tiny_model_cfg, tiny_train_cfg,
                                              tmp_path, content):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(content)
    with pytest.raises(ValueError, match="cannot be read") as info:
        train(small_task, tiny_model_cfg, tiny_train_cfg, seed=0, checkpoint=ckpt,
              progress=False)
    assert str(ckpt) in str(info.value)


def test_truncated_checkpoint_gives_clear_error(tmp_path):
    ckpt = tmp_path / "c.pt"
    save_checkpoint({"step": 3, "w": torch.arange(1000.0)}, ckpt)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(ckpt)


def test_save_checkpoint_failure_keeps_old_file(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.pt"
    save_checkpoint({"step": 1}, ckpt)
    before = ckpt.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, ckpt)
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


# --- devices ---------------------------------------------------------------------------------


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("field", ["lr", "weight_decay"])
def test_configs_built_in_code_are_validated_before_training(small_task, tiny_model_cfg,
                                                             tiny_train_cfg, field):
    """A TrainingConfig built directly (not through load_config) with lr=inf once trained and
    wrote NaN activations."""
    from rsa_bias.config import ConfigError

    bad = dataclasses.replace(tiny_train_cfg, **{field: float("inf")})
    with pytest.raises(ConfigError, match=f"training.{field}"):
        train(small_task, tiny_model_cfg, bad, seed=0)
