"""The papers' experiments as functions returning xarray results and figures."""

from __future__ import annotations

from rsa_bias.experiments.complexity_bias import run_complexity_bias, summary_table

__all__ = ["run_complexity_bias", "summary_table"]
