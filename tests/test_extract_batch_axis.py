"""Extraction refuses outputs whose first axis is not the batch, also when shapes collide."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from rsa_bias.training.extract import iter_module_activations, module_activations


class SequenceFirst(nn.Module):
    """A Transformer layer with batch_first=False fed (T, N, D) by the model itself."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, T, D)
        return self.layer(x.transpose(0, 1)).transpose(0, 1)


@torch.no_grad()
def test_sequence_first_output_refused_when_length_equals_batch():
    """T = batch size = 4: the (T, N, D) output has 4 rows for 4 inputs, which the row count
    alone cannot tell from a batch; the one-input check names the layer."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, 8)  # 8 stimuli, sequences of 4 steps
    with pytest.raises(ValueError, match=r"'layer' gave 4 rows for a batch of 1 inputs"):
        next(iter_module_activations(SequenceFirst(), x, layers=["layer"], batch_size=4))


@torch.no_grad()
def test_batch_first_outputs_with_equal_axes_pass():
    """(N, T, D) with T = N and (N, C, H, W) with C = N are batches: the check lets them
    through and the values are the modules' own."""
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(8, 8))
    x = torch.randn(4, 4, 8)
    got = module_activations(seq, x, stimulus_ids=np.arange(4), layers=["0"], batch_size=4)
    np.testing.assert_allclose(got["0"].values, seq(x).mean(1).numpy(), atol=1e-6)
    conv = nn.Sequential(nn.Conv2d(3, 4, 1))
    img = torch.randn(4, 3, 5, 5)
    got = module_activations(conv, img, stimulus_ids=np.arange(4), layers=["0"], batch_size=4)
    np.testing.assert_allclose(got["0"].values, conv(img).mean((2, 3)).numpy(), atol=1e-6)


class Counter(nn.Module):
    """Adds how often it has been called: a buffer updated in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.out = nn.Identity()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls = self.calls + 1
        return self.out(self.lin(x) + self.calls)


class InPlaceCounter(Counter):
    """The same, updating its buffer in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.out(self.lin(x) + self.calls)


class FixedBatch(nn.Module):
    """Reshapes with a hard-coded batch size, so it cannot take a single input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(4, -1))


@pytest.mark.parametrize("counter", [Counter, InPlaceCounter])
@torch.no_grad()
def test_the_one_input_check_leaves_no_trace_and_tolerates_fixed_batches(counter):
    torch.manual_seed(0)
    model, x = counter(), torch.randn(8, 3)
    with pytest.warns(RuntimeWarning, match="'out': an input's activations differ"):
        got = module_activations(model, x, stimulus_ids=np.arange(8), layers=["out"],
                                 batch_size=4)
    lin = model.lin(x).numpy()
    # the check's own call is undone: the batches saw calls 1 and 2, as without it
    np.testing.assert_allclose(got["out"].values, lin + np.repeat([[1.0], [2.0]], 4, axis=0),
                               atol=1e-6)
    assert float(model.calls) == 2
    fixed, x = FixedBatch(), torch.randn(8, 3, 2)
    with pytest.warns(RuntimeWarning, match="could not run on a single input"):
        got = module_activations(fixed, x, stimulus_ids=np.arange(8), layers=["lin"],
                                 batch_size=4)
    want = torch.cat([fixed(x[:4]), fixed(x[4:])]).numpy()
    np.testing.assert_allclose(got["lin"].values, want, atol=1e-6)


@torch.no_grad()
def test_a_model_that_mixes_the_inputs_of_a_batch_warns():
    """A batch-first model feeding an LSTM built sequence-first recurs over the stimuli of a
    batch: its first stimulus's activations depend on the others."""
    torch.manual_seed(0)
    mixer = nn.Sequential()
    mixer.add_module("lstm", nn.LSTM(5, 4))  # batch_first=False, fed (N, T, D)
    x = torch.randn(8, 4, 5)
    with pytest.warns(RuntimeWarning, match="'lstm': an input's activations differ"):
        module_activations(mixer, x, stimulus_ids=np.arange(8), layers=["lstm"], batch_size=4)
    clean = nn.Sequential()
    clean.add_module("lstm", nn.LSTM(5, 4, batch_first=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module_activations(clean, x, stimulus_ids=np.arange(8), layers=["lstm"], batch_size=4)
