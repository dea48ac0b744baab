"""The store's readers leave no file handle behind (so reads cannot meet another handle on
the same file and crash or fail), and ``read_results`` checks what its caller needs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rsa_bias.store import (
    COMPLEXITY_BIAS_RESULTS,
    StoreError,
    activation_tree,
    read_activations,
    read_results,
    validate_results,
    write_activations,
    write_results,
)

WRITE = """
import numpy as np, xarray as xr
from rsa_bias.store import activation_tree, write_activations, write_results
stim = xr.Dataset(coords={"stimulus": np.arange(6), "feature_a": ("stimulus", [0, 1] * 3)},
                  attrs={"feature_names": ["a"]})
acts = np.arange(2 * 6 * 3, dtype=np.float32).reshape(2, 6, 3)
write_activations(activation_tree(stim, {"h": acts}, seeds=[0, 1]), "a.nc")
r2 = np.linspace(0, 1, 4).reshape(2, 1, 2)
write_results(xr.Dataset({"r2": (("seed", "layer", "feature"), r2)},
                         coords={"seed": [0, 1], "layer": ["h"], "feature": ["a", "b"]}),
              "r.nc")
"""


def _python(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """Run ``body`` after writing ``a.nc`` and ``r.nc`` in a fresh interpreter (a crash
    fails the test instead of killing pytest)."""
    script = WRITE + textwrap.dedent(body) + "\nprint('done')\n"
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("done"), proc.stdout


def test_interleaved_reads_keep_working(tmp_path):
    proc = _python(tmp_path, """
        from rsa_bias.store import read_activations, read_results
        alive = []
        for _ in range(20):
            alive += [read_results("r.nc"), read_activations("a.nc"), read_results("r.nc"),
                      read_activations("a.nc", layers=["h"])]
        for res in alive[0::2]:
            np.testing.assert_array_equal(res.r2.values, r2)
        for tree in alive[1::2]:
            np.testing.assert_array_equal(tree["h"]["activation"].values, acts)
    """)
    _check(proc)


def test_reads_work_while_the_caller_holds_handles_on_the_files(tmp_path):
    """A notebook's own ``open_dataset``/``open_datatree`` on the files must not make the
    store's reads fail (they did: "NetCDF: HDF error", reported as a corrupt file)."""
    proc = _python(tmp_path, """
        from rsa_bias.store import read_activations, read_results
        held = [xr.open_dataset("r.nc", engine="netcdf4")]
        first = read_results("r.nc")
        held.append(xr.open_datatree("a.nc", engine="netcdf4"))
        held.append(xr.open_datatree("r.nc", engine="netcdf4"))
        for _ in range(5):
            np.testing.assert_array_equal(read_results("r.nc").r2.values, r2)
            tree = read_activations("a.nc")
            np.testing.assert_array_equal(tree["h"]["activation"].values, acts)
        held.append(xr.open_dataset("r.nc", engine="netcdf4"))
        np.testing.assert_array_equal(held[0].r2.values, r2)
        np.testing.assert_array_equal(held[-1].r2.values, first.r2.values)
    """)
    _check(proc)


def _open_fds(path: Path) -> int:
    """Descriptors of this process open on ``path`` (Linux)."""
    n, target = 0, str(path.resolve())
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            continue
    return n


@pytest.fixture
def files(tmp_path):
    stim = xr.Dataset(coords={"stimulus": np.arange(4), "feature_a": ("stimulus", [0, 1, 0, 1])},
                      attrs={"feature_names": ["a"]})
    tree = activation_tree(stim, {"h": np.ones((4, 2))})
    res = xr.Dataset({"r2": (("seed", "layer", "feature"), np.full((1, 1, 1), 0.5))},
                     coords={"seed": [0], "layer": ["h"], "feature": ["a"]})
    return (write_activations(tree, tmp_path / "a.nc"), write_results(res, tmp_path / "r.nc"),
            res)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_no_descriptor_left_open_after_a_read(files):
    act_path, res_path, _ = files
    kept = [read_results(res_path), read_activations(act_path)]
    assert _open_fds(res_path) == 0 and _open_fds(act_path) == 0
    assert kept[0].r2.item() == 0.5


def test_files_can_be_replaced_and_renamed_after_a_read(files):
    act_path, res_path, res = files
    before = read_results(res_path)
    tree = read_activations(act_path)
    write_results(res * 2, res_path)  # overwrite in place (atomic rename onto it)
    os.replace(act_path, act_path.with_name("moved.nc"))
    assert before.r2.item() == 0.5 and read_results(res_path).r2.item() == 1.0
    assert tree["h"]["activation"].values.sum() == 8
    res_path.unlink()
    assert before.r2.item() == 0.5


# --- what read_results checks ----------------------------------------------------------------


def test_other_experiments_results_stay_readable(files, tmp_path):
    path = write_results(xr.Dataset({"share": ("model", [0.1, 0.9])}), tmp_path / "demo.nc")
    assert read_results(path).share.values.tolist() == [0.1, 0.9]


def test_missing_variables_named_with_what_is_there(tmp_path):
    ds = xr.Dataset({"share": ("model", [0.1, 0.9])}, attrs={"method": "demo_loud_feature"})
    path = write_results(ds, tmp_path / "demo.nc")
    with pytest.raises(StoreError) as info:
        read_results(path, variables=COMPLEXITY_BIAS_RESULTS)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "['r2', 'accuracy']" in msg
    assert "share" in msg and "demo_loud_feature" in msg
    with pytest.raises(StoreError, match=r"\['score'\]"):
        read_results(path, variables=["share", "score"])
    assert read_results(path, variables=["share"]).share.size == 2


def test_variable_without_a_needed_dim_named(files):
    _, res_path, _ = files
    with pytest.raises(StoreError, match="'r2' has dims .* without \\['step'\\]"):
        read_results(res_path, variables={"r2": ("seed", "step")})
    validate_results(read_results(res_path), variables={"r2": ("feature", "seed")})


def test_complexity_bias_schema_is_what_summary_table_reads(files):
    from rsa_bias.experiments import summary_table

    rng = np.random.default_rng(0)
    ds = xr.Dataset({"r2": (("seed", "layer", "feature"), rng.random((2, 1, 2))),
                     "accuracy": (("seed", "split", "feature", "eval_step"),
                                  rng.random((2, 2, 2, 3)))},
                    coords={"seed": [0, 1], "layer": ["h"], "feature": ["a", "b"],
                            "split": ["val", "test"], "eval_step": [0, 1, 2]})
    validate_results(ds, variables=COMPLEXITY_BIAS_RESULTS)
    assert list(summary_table(ds).index) == ["a", "b"]


def test_folder_instead_of_a_file_says_so(tmp_path):
    (tmp_path / "results.nc").mkdir()
    for reader in (read_results, read_activations):
        with pytest.raises(StoreError, match="is a folder, not a file"):
            reader(tmp_path / "results.nc")


def test_unreadable_file_says_so(files, monkeypatch):
    _, res_path, _ = files

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(res_path), "read_bytes", denied)
    monkeypatch.setattr(xr, "open_dataset", lambda *a, **k: denied(res_path))
    with pytest.raises(StoreError, match="cannot be read .*permissions") as info:
        read_results(res_path)
    assert str(res_path) in str(info.value)
