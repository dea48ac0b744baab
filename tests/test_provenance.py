"""Provenance: the commit recorded is rsa_bias's own, and every result's attrs say how it was
computed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rsa_bias import provenance
from rsa_bias._version import __version__

ROOT = Path(provenance.__file__).resolve().parent.parent


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not running from a git checkout")
def test_git_sha_is_the_checkout_commit():
    head = _git("rev-parse", "HEAD", cwd=ROOT)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", cwd=ROOT))
    assert provenance.checkout_sha(ROOT / "rsa_bias") == head + ("-dirty" if dirty else "")
    assert len(head) == 40


def test_a_copy_inside_another_repository_records_no_commit(tmp_path):
    """An installed copy that happens to sit inside some other git work tree (a user's analysis
    repository, a site-packages under version control) must not record that tree's commit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    other = tmp_path / "someone_elses_repo"
    (other / "rsa_bias").mkdir(parents=True)
    (other / "rsa_bias" / "__init__.py").write_text("")
    (other / "pyproject.toml").write_text('[project]\nname = "their_project"\n')
    _git("init", "-q", cwd=other)
    _git("-c", "user.email=a@b", "-c", "user.name=a", "add", ".", cwd=other)
    _git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x", cwd=other)
    assert provenance.checkout_sha(other / "rsa_bias") == "unknown"
    nested = tmp_path / "outer"
    (nested / "lib" / "rsa_bias").mkdir(parents=True)
    _git("init", "-q", cwd=nested)
    assert provenance.checkout_sha(nested / "lib" / "rsa_bias") == "unknown"
    assert provenance.checkout_sha(tmp_path / "no_git_here" / "rsa_bias") == "unknown"


def test_result_attrs_are_flat_and_complete():
    attrs = provenance.result_attrs("evaluate_models", method="spearman", n_boot=10, seed=None,
                                    names=["a", "b"], nested={"k": [1, 2]}, flag=True,
                                    value=np.float64(0.5))
    assert attrs["function"] == "evaluate_models" and attrs["method"] == "spearman"
    assert attrs["n_boot"] == 10 and attrs["seed"] == "none" and attrs["flag"] == 1
    assert attrs["names"] == ["a", "b"] and json.loads(attrs["nested"]) == {"k": [1, 2]}
    assert attrs["value"] == 0.5 and type(attrs["value"]) is float
    config = json.loads(attrs["config_json"])
    assert config == {"function": "evaluate_models", "method": "spearman", "n_boot": 10,
                      "seed": None, "names": ["a", "b"], "nested": {"k": [1, 2]},
                      "flag": True, "value": 0.5}
    assert attrs["rsa_bias_version"] == __version__
    assert attrs["git_sha"] == provenance.git_sha() and attrs["created"].endswith("+00:00")
    for value in attrs.values():
        assert isinstance(value, (str, int, float, list)), value
