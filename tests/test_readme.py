"""The README's examples work as printed: its Python blocks run (in a scratch folder, one
namespace) and print what they compute, and every config its command lines run is valid."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import pytest

from rsa_bias.cli import _grid_points, build_parser
from rsa_bias.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def _commands() -> list[list[str]]:
    """Every ``rsa-bias ...`` command of the README's bash blocks, continuation lines joined."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("&&")[-1].strip()
            if line.startswith("rsa-bias "):
                out.append(shlex.split(line, comments=True)[1:])
    return out


def test_readme_has_examples():
    assert len(_python_blocks()) >= 3
    assert {c[0] for c in _commands()} >= {"run", "sweep", "show", "validate", "demo", "brain"}


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_commands_parse_and_their_configs_are_valid(argv):
    """What ``rsa-bias run/sweep/validate`` would refuse before training is refused here."""
    args = build_parser().parse_args(argv)
    if argv[0] in ("run", "validate"):
        load_config(ROOT / args.config, args.set)
    elif argv[0] == "sweep":
        for point in _grid_points(args.grid, args.one_at_a_time):
            load_config(ROOT / args.config, args.set + point)


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    from rsa_bias.analysis import AlphaGridWarning

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").symlink_to(ROOT / "models")
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the README uses today's API
        warnings.simplefilter("ignore", AlphaGridWarning)  # noiseless simulated data
        for block in _python_blocks():
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    assert (tmp_path / "runs" / "one_seed" / "results.nc").is_file()
    assert "0.588" in printed  # animacy model vs human IT, as the README states
    assert "'voxel': 530" in printed and "equalised" in printed
    share = namespace["share"]
    assert float(share.sel(feature="a")) > 0.5 > float(abs(share.sel(feature="b")))
