"""The README's Python examples run as printed (in a scratch folder, one namespace)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(_python_blocks()) >= 3


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").symlink_to(ROOT / "models")
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. AlphaGridWarning on noiseless simulated data
        for block in _python_blocks():
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "runs" / "one_seed" / "results.nc").is_file()
    share = namespace["rsa_bias"].attribute_cka(namespace["model"].response,
                                                namespace["brain"].response,
                                                stimuli=namespace["stim"]).share
    assert float(share.sel(feature="a")) > 0.5 > float(abs(share.sel(feature="b")))
