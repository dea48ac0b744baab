"""Conversion to and from rsatoolbox objects; the code is in :mod:`rsa_bias.analysis.rsa.interop`
(this module keeps the short import path ``rsa_bias.interop``)."""

from __future__ import annotations

from rsa_bias.analysis.rsa.interop import *  # noqa: F403
from rsa_bias.analysis.rsa.interop import __all__  # noqa: F401
