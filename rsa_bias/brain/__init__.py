"""Loaders that turn shipped real recordings into the labelled form used by ``analysis``.

* :func:`load_rsa92` — the Kriegeskorte et al. (2008) 92-image RDMs (human IT, monkey IT,
  behaviour, models) with the images and category labels.
* :func:`load_v4` — Cowley et al. (2023) macaque V4 spike counts (neuron x image x repeat)
  with the 640 images.

Data location: ``data/`` next to the package, or ``$RSA_BIAS_DATA``.
"""

from __future__ import annotations

from rsa_bias.brain._paths import data_dir
from rsa_bias.brain.rsa92 import load_rsa92
from rsa_bias.brain.v4 import load_v4

__all__ = ["data_dir", "load_rsa92", "load_v4"]
