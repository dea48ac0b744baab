"""The simulated stimuli and brain the attribution and RDM-partition tests share."""

from __future__ import annotations

import xarray as xr

from rsa_bias.brain.simulated import factorial_stimuli, simulate_population

SHARES = {"a": 0.5, "b": 0.2, "c": 0.1}


def factorial_set() -> xr.Dataset:
    """Features a (2 values), b (2), c (3), every combination 12 times: 144 stimuli."""
    return factorial_stimuli({"a": 2, "b": 2, "c": 3}, repeats=12)


def simulated_brain(stimuli: xr.Dataset) -> xr.Dataset:
    """200 neurons coding a, b, c with the variance shares of :data:`SHARES`, 2 noisy repeats."""
    return simulate_population(stimuli, SHARES, n_neurons=200, noise_ratio=0.2, n_repeats=2,
                               seed=0)
