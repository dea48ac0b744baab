"""``--threads N`` limits torch and the BLAS libraries numpy and scikit-learn use."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from rsa_bias.cli._args import set_threads


def test_set_threads_limits_torch_and_blas():
    np.ones((2, 2)) @ np.ones((2, 2))  # BLAS loaded
    before_torch = torch.get_num_threads()
    saved = threadpool_limits(limits=None)  # remembers every library's current limit
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
        set_threads(0)  # 0 leaves the libraries as they are
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before_torch)
        saved.restore_original_limits()
