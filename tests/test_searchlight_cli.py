"""``rsa-bias searchlight``: the Haxby face-vs-house map from one command."""

from __future__ import annotations

import numpy as np
import pytest

from rsa_bias.cli import main
from rsa_bias.store import read_results


@pytest.mark.parametrize("radius", ["0", "-3", "abc", "150"])
def test_bad_radius_is_refused(tmp_path, radius, capsys):
    with pytest.raises(SystemExit):
        main(["searchlight", "--out", str(tmp_path / "o"), "--radius-mm", radius])
    assert "radius" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_searchlight_command_writes_the_map(tmp_path, capsys):
    out = tmp_path / "sl"
    assert main(["searchlight", "--out", str(out), "--radius-mm", "6", "--no-progress"]) == 0
    res = read_results(out / "haxby_searchlight.nc")
    score = res["score"].sel(model="face_vs_house").values
    printed = capsys.readouterr().out
    assert f"peak {np.nanmax(score):.3f}" in printed
    for name in ("haxby_searchlight_face_vs_house.nii.gz", "haxby_searchlight.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.parametrize("argv", [["--n-perm", "0"], ["--jobs", "0"], ["--image-size", "2"]])
def test_alignment_verb_refuses_bad_options(tmp_path, argv, capsys):
    with pytest.raises(SystemExit):
        main(["alignment", "--out", str(tmp_path / "o"), *argv])
    assert "must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
