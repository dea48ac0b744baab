"""Command-line mistakes end in one ``rsa-bias: error:`` line that says what to do, never a
traceback: an ``--out`` that is a file, negative ``--threads``, ``show`` on the wrong thing,
unreadable config files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from cli_helpers import QUICK, one_line_error, run_main

from rsa_bias.store import write_results


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


# --- --out -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "{config}", "--out", "{out}", *QUICK],
    ["demo", "loud-feature", "--quick", "--out", "{out}"],
    ["demo", "loud-feature", "--quick", "--out", "{dir}", "--figures-dir", "{out}"],
    ["brain", "--out", "{out}", "--no-progress"],
], ids=["run", "demo", "demo-figures-dir", "brain"])
def test_out_that_is_a_file_is_one_line(argv, a_file, tmp_path, shipped_config):
    argv = [a.format(config=shipped_config, out=a_file, dir=tmp_path / "d") for a in argv]
    code, _, err = run_main(argv)
    assert code == 2
    line = one_line_error(err)
    assert str(a_file) in line and "is a file" in line
    assert a_file.read_text() == "not a folder\n"


def test_out_under_a_file_is_one_line(a_file, shipped_config):
    code, _, err = run_main(["run", str(shipped_config), "--out", str(a_file / "sub"), *QUICK])
    assert code == 2
    assert str(a_file) in one_line_error(err)


# --- --threads -------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "{config}", "--out", "{out}", "--threads", "-1", *QUICK],
    ["demo", "loud-feature", "--quick", "--out", "{out}", "--threads", "-2"],
    ["brain", "--out", "{out}", "--threads", "-1"],
], ids=["run", "demo", "brain"])
def test_negative_threads_is_one_line(argv, tmp_path, shipped_config):
    out = tmp_path / "out"
    argv = [a.format(config=shipped_config, out=out) for a in argv]
    code, _, err = run_main(argv)
    assert code == 2
    line = one_line_error(err)
    assert "--threads" in line and ">= 0" in line
    assert not out.exists()


# --- show ------------------------------------------------------------------------------------


def test_show_of_a_demo_result_says_what_is_missing(tmp_path):
    ds = xr.Dataset({"share": (("model", "feature"), np.ones((2, 2)))},
                    coords={"model": ["a", "b"], "feature": ["A", "B"]},
                    attrs={"method": "demo_loud_feature"})
    write_results(ds, tmp_path / "results.nc")
    code, _, err = run_main(["show", str(tmp_path)])
    assert code == 2
    line = one_line_error(err)
    assert "'r2'" in line and "'accuracy'" in line and "demo_loud_feature" in line
    assert "rsa-bias run" in line


def test_show_of_a_result_without_accuracy_names_it(tmp_path):
    ds = xr.Dataset({"r2": (("seed", "layer", "feature"), np.ones((1, 1, 2)))},
                    coords={"seed": [0], "layer": ["h"], "feature": ["a", "b"]})
    write_results(ds, tmp_path / "results.nc")
    code, _, err = run_main(["show", str(tmp_path)])
    assert code == 2
    line = one_line_error(err)
    assert "lacks the data variables ['accuracy']" in line


def test_show_of_a_file_says_it_needs_a_folder(a_file):
    code, _, err = run_main(["show", str(a_file)])
    assert code == 2
    line = one_line_error(err)
    assert str(a_file) in line and "folder" in line


def test_show_where_results_nc_is_a_folder(tmp_path):
    (tmp_path / "results.nc").mkdir()
    code, _, err = run_main(["show", str(tmp_path)])
    assert code == 2
    line = one_line_error(err)
    assert "results.nc" in line and "is a folder" in line


# --- errors of the operating system ----------------------------------------------------------


@pytest.mark.parametrize("exc", [IsADirectoryError(21, "Is a directory", "x"),
                                 NotADirectoryError(20, "Not a directory", "x/y"),
                                 PermissionError(13, "Permission denied", "x"),
                                 UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid byte")],
                         ids=lambda e: type(e).__name__)
def test_os_errors_are_one_line(monkeypatch, shipped_config, exc):
    import rsa_bias.cli as cli

    def fail(*args, **kwargs):
        raise exc

    import rsa_bias.config.kinds as kinds

    monkeypatch.setattr(cli, "load_config", fail)
    monkeypatch.setattr(kinds, "load_any_config", fail)  # what validate reads configs with
    code, _, err = run_main(["validate", str(shipped_config)])
    assert code == 2
    one_line_error(err)


def test_non_utf8_config_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"name = 'caf\xe9'\n")
    code, _, err = run_main(["validate", str(path)])
    assert code == 2
    line = one_line_error(err)
    assert str(path) in line and "UTF-8" in line


def test_folder_as_config_is_one_line(tmp_path):
    code, _, err = run_main(["validate", str(tmp_path)])
    assert code == 2
    assert "is a folder" in one_line_error(err)


def test_nan_learning_rate_refused_before_training(tmp_path, shipped_config):
    out = tmp_path / "out"
    code, _, err = run_main(["run", str(shipped_config), "--out", str(out), *QUICK,
                          "--set", "training.lr=inf"])
    assert code == 2
    assert one_line_error(err).startswith("rsa-bias: error: training.lr:")
    assert not out.exists()
