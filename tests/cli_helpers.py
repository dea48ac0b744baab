"""What the command-line error tests share: a tiny config's overrides, a captured ``main`` call
and the check that an error is one ``rsa-bias: error:`` line."""

from __future__ import annotations

import contextlib
import io

QUICK = ["--set", "seeds=[0]", "--set", "training.steps=2", "--set", "training.eval_every=1",
         "--set", "training.snapshot_steps=[0]", "--set", "training.batch_size=8",
         "--set", "task.n_distractor=3", "--set", "task.val_size=64", "--set",
         "task.test_size=64", "--set", "model.width=4", "--set", "model.depth=1",
         "--set", "training.device=cpu", "--no-progress", "--no-figures"]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``rsa-bias argv``: exit code, stdout and stderr (argparse's exits included)."""
    import rsa_bias.cli as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def one_line_error(err: str) -> str:
    """The error line of ``err``, asserting there is no traceback and one line only."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1 or lines[0].startswith("usage:"), err
    assert "error:" in lines[-1], err
    return lines[-1]
