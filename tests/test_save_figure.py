"""Figures are written atomically: a failed save keeps the previous file."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rsa_bias.plotting import save_figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_save_figure_writes_png_and_closes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "a.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    path.write_bytes(b"previous")
    fig, _ = plt.subplots()

    def broken(target, **kwargs):
        with open(target, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="killed"):
        save_figure(fig, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
