"""Extraction refuses outputs whose first axis is not the batch, also when shapes collide."""

from __future__ import annotations

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
