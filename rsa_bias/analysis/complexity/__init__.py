"""Complexity of functions sampled on a grid (Teney et al. 2024, "Neural Redshift").

Three measures, each in [0, 1]-like units and invariant to adding a constant to a function
or multiplying it by a positive number, each vectorised over any number of functions:

* :func:`fourier_frequency` — magnitude-weighted mean frequency radius of the DFT;
* :func:`polynomial_order` — magnitude-weighted mean total order of a Legendre fit;
* :func:`lz_complexity` — LZ76 phrase count of the quantised function, relative to noise;

and :func:`lz76`, the phrase count of one symbol sequence.
"""

from __future__ import annotations

from rsa_bias.analysis.complexity.fourier import fourier_frequency
from rsa_bias.analysis.complexity.lz import lz76, lz_complexity, random_reference
from rsa_bias.analysis.complexity.polynomial import polynomial_order

__all__ = ["fourier_frequency", "polynomial_order", "lz_complexity", "lz76",
           "random_reference"]
