"""Loaders that turn shipped real recordings and users' own data into the labelled form used
by ``analysis``.

Shipped datasets:

* :func:`load_rsa92` — the Kriegeskorte et al. (2008) 92-image RDMs (human IT, monkey IT,
  behaviour, models) with the images and category labels.
* :func:`load_v4` — Cowley et al. (2023) macaque V4 spike counts (neuron x image x repeat)
  with the 640 images.
* :func:`load_haxby` — Haxby et al. (2001) subject 1, one slice, 12 runs: per-run GLM
  patterns ``response(run, stimulus, voxel)`` of 8 object categories, residuals, category
  model RDMs.
* :func:`load_finger` — PCM-toolbox finger fMRI (Ejaz et al. 2015; Diedrichsen et al.
  2013): a DataTree with one ``response(run, stimulus, voxel)`` group per participant and
  the Muscle / Naturalstats / somatotopy model RDMs.

Your own data:

* :func:`patterns_from_nifti` — 4D NIfTI runs + BIDS events -> per-run condition patterns
  (nilearn first-level GLM) and residuals; :func:`to_nifti` puts voxel scores back in space.
* :func:`dataset_from_arrays`, :func:`dataset_from_csv` — response arrays or tables with
  stimulus ids and features.

Simulated brains with known ground truth:

* :func:`factorial_stimuli`, :func:`simulate_population` — populations whose feature variance
  shares, noise, size and nonlinear mixing are set, for checking what a score measures.

Data location: ``data/`` next to the package, or ``$RSA_BIAS_DATA``. nilearn and nibabel
(the ``brain`` extra) are imported only by the functions that read NIfTI files.
"""

from __future__ import annotations

from rsa_bias.brain._paths import data_dir
from rsa_bias.brain.finger import load_finger
from rsa_bias.brain.haxby import load_haxby
from rsa_bias.brain.nifti import patterns_from_nifti, to_nifti
from rsa_bias.brain.rsa92 import load_rsa92
from rsa_bias.brain.simulated import component_bases, factorial_stimuli, simulate_population
from rsa_bias.brain.tables import dataset_from_arrays, dataset_from_csv
from rsa_bias.brain.v4 import load_v4

__all__ = [
    "factorial_stimuli",
    "simulate_population",
    "component_bases",
    "data_dir",
    "load_rsa92",
    "load_v4",
    "load_haxby",
    "load_finger",
    "patterns_from_nifti",
    "to_nifti",
    "dataset_from_arrays",
    "dataset_from_csv",
]
