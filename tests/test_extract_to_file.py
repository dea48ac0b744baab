"""A user's model -> an activation file: extract_to_file and ``rsa-bias extract``."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

from rsa_bias.cli import main
from rsa_bias.experiments import extraction
from rsa_bias.experiments.extraction import extract_to_file, load_factory, named_stimuli
from rsa_bias.store import layer_activation, read_activations
from rsa_bias.training.extract import module_activations

MODEL_FILE = textwrap.dedent("""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x) + x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, stride=2)
            self.layer1 = nn.Sequential(Block(4), Block(4))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

        def forward(self, x):
            return self.head(self.layer1(self.stem(x)))

    def make_net():
        torch.manual_seed(0)
        return Net()

    class Pair(nn.Module):
        def forward(self, x):
            return x, 2 * x

    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, stride=2)
            self.pair = Pair()

        def forward(self, x):
            return self.pair(self.stem(x))[0].flatten(1)

    def make_pair():
        torch.manual_seed(0)
        return TwoOutputs()
""")


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "user_models.py"
    path.write_text(MODEL_FILE)
    return path


def test_file_equals_in_memory_extraction(tmp_path, model_file):
    model = load_factory(f"{model_file}:make_net")()
    stimuli = named_stimuli("rsa92").isel(stimulus=slice(0, 30))
    layers = ["layer1.1.relu", "head.2"]
    path = extract_to_file(model, stimuli, tmp_path / "a.nc", layers=layers, batch_size=7,
                           image_size=16)
    tree = read_activations(path, chunks={})
    ref = module_activations(model, stimuli, layers=layers, image_size=16)
    for name in layers:
        act = layer_activation(tree, name)
        np.testing.assert_array_equal(act.values, ref[name].values)
        np.testing.assert_array_equal(act["stimulus"].values, stimuli["stimulus"].values)
        np.testing.assert_array_equal(act["feature_face"].values, stimuli["feature_face"].values)
    assert tree.attrs["model_class"].endswith("Net")
    assert tree.attrs["layer_paths"] == "layer1.1.relu,head.2"
    assert tree.attrs["reduction"] == "mean" and tree.attrs["method"] == "extract"
    assert "git_sha" in tree.attrs and "config_json" in tree.attrs
    assert tree.attrs["stimuli_source"] == "rsa92" and tree.attrs["torch_version"]
    assert "batch_size" not in tree.attrs["config_json"]  # the numbers do not depend on it
    tree.close()


def test_folder_and_npy_stimuli(tmp_path, model_file):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    for i, img in enumerate(imgs):
        (tmp_path / "imgs" / ("a" if i < 2 else "b")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "imgs" / ("a" if i < 2 else "b") / f"{i}.png")
    model = load_factory(f"{model_file}:make_net")()
    path = extract_to_file(model, tmp_path / "imgs", tmp_path / "f.nc", layers=["stem"],
                           image_size=12, read_batch=2)
    act = layer_activation(read_activations(path), "stem")
    ref = module_activations(model, imgs, stimulus_ids=np.arange(5), layers=["stem"])
    # read two images at a time: float32 convolutions of other batch sizes differ in the last bit
    np.testing.assert_allclose(act.values, ref["stem"].values, rtol=0, atol=1e-6)
    assert act["feature_folder"].values.tolist() == ["a", "a", "b", "b", "b"]
    np.save(tmp_path / "x.npy", imgs)
    assert main(["extract", f"{model_file}:make_net", "--stimuli", str(tmp_path / "x.npy"),
                 "--layers", "stem", "--out", str(tmp_path / "n.nc"), "--no-progress"]) == 0
    tree = read_activations(tmp_path / "n.nc")
    assert tree.attrs["stimuli_source"] == f"array file {tmp_path / 'x.npy'}"
    assert tree.attrs["model_source"] == f"{model_file}:make_net"
    act = layer_activation(tree, "stem")
    np.testing.assert_allclose(act.values, ref["stem"].values, rtol=0, atol=1e-6)
    assert act["stimulus"].values.tolist() == list(range(5))


def test_cli_random_projection_and_list_layers(tmp_path, model_file, capsys):
    out = tmp_path / "p.nc"
    assert main(["extract", f"{model_file}:make_net", "--stimuli", "rsa92", "--layers",
                 "layer1.0.relu", "--out", str(out), "--reduction", "random_projection",
                 "--n-components", "8", "--seed", "3", "--image-size", "16",
                 "--no-progress"]) == 0
    tree = read_activations(out)
    assert layer_activation(tree, "layer1.0.relu").shape == (92, 8)
    assert tree.attrs["n_components"] == 8 and tree.attrs["projection_seed"] == 3
    assert main(["extract", f"{model_file}:make_net", "--list-layers"]) == 0
    listed = capsys.readouterr().out.split()
    assert "layer1.0.conv" in listed and "head.2" in listed


@pytest.mark.parametrize("argv, match", [
    (["{m}:nope", "--list-layers"], "no callable 'nope'"),
    (["{m}", "--list-layers"], "FILE.py:FACTORY"),
    (["missing.py:make_net", "--list-layers"], "does not exist"),
    (["{m}:make_net", "--stimuli", "rsa92", "--layers", "layer1.2.relu", "--out", "{o}"],
     "close matches"),
    (["{m}:make_net", "--stimuli", "nowhere", "--layers", "stem", "--out", "{o}"],
     "neither a shipped set"),
    (["{m}:make_net", "--layers", "stem"], "give --stimuli"),
])
def test_cli_errors_say_what_to_do(tmp_path, model_file, capsys, argv, match):
    argv = [a.format(m=model_file, o=tmp_path / "o.nc") for a in argv]
    assert main(["extract", *argv]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o.nc").exists()


def test_unlabelled_array_needs_ids(tmp_path, model_file):
    model = load_factory(f"{model_file}:make_net")()
    x = torch.zeros(3, 3, 8, 8)
    with pytest.raises(ValueError, match="stimulus_ids are required"):
        extract_to_file(model, x, tmp_path / "a.nc", layers=["stem"])
    with pytest.raises(ValueError, match="3 distinct ids"):
        extract_to_file(model, x, tmp_path / "a.nc", layers=["stem"], stimulus_ids=[0, 0, 1])
    assert not list(tmp_path.glob("*.nc"))


def test_compare_from_a_model_in_one_command(tmp_path, model_file, capsys):
    import pandas as pd

    out = tmp_path / "out"
    assert main(["compare", f"{model_file}:make_net", "--dataset", "rsa92", "--layers",
                 "layer1.1.relu,head.2", "--image-size", "16", "--out", str(out),
                 "--n-boot", "10", "--no-progress"]) == 0
    tree = read_activations(out / "activations.nc")
    model = load_factory(f"{model_file}:make_net")()
    ref = module_activations(model, named_stimuli("rsa92"), layers=["layer1.1.relu"],
                             image_size=16)
    np.testing.assert_array_equal(layer_activation(tree, "layer1.1.relu").values,
                                  ref["layer1.1.relu"].values)
    table = pd.read_csv(out / "brain_rsa92.csv")
    assert table["layer"].tolist() == ["layer1.1.relu", "head.2"]
    assert main(["compare", f"{model_file}:make_net", "--dataset", "rsa92", "--out",
                 str(tmp_path / "o2")]) == 2
    assert "--layers" in capsys.readouterr().err


def test_model_file_imports_its_neighbours_and_stale_temporaries_go(tmp_path, capsys):
    from rsa_bias._atomic import _HOST

    (tmp_path / "my_blocks.py").write_text("from torch import nn\n\n"
                                           "def block():\n    return nn.Conv2d(3, 2, 3)\n")
    (tmp_path / "net_with_helper.py").write_text(
        "from torch import nn\nfrom my_blocks import block\n\n"
        "def make():\n    return nn.Sequential(block(), nn.ReLU())\n")
    stale = tmp_path / f".a.nc.{_HOST}.999999999.abc123.tmp"  # its writer is long dead
    stale.write_bytes(b"half")
    model = load_factory(f"{tmp_path / 'net_with_helper.py'}:make")()
    extract_to_file(model, torch.zeros(2, 3, 6, 6), tmp_path / "a.nc", layers=["1"],
                    stimulus_ids=[0, 1])
    assert not stale.exists() and (tmp_path / "a.nc").exists()
    assert main(["compare", str(tmp_path / "a.nc")]) == 2
    assert "add --dataset" in capsys.readouterr().err
    assert main(["extract", f"{tmp_path / 'net_with_helper.py'}:make", "--stimuli", "rsa92",
                 "--layers", "1", "--out", str(tmp_path / "b.nc"), "--device", "gpu7"]) == 2
    assert "--device 'gpu7' cannot be used" in capsys.readouterr().err


def test_a_module_called_twice_with_other_shapes_is_named():
    from torch import nn

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.relu = nn.Linear(4, 6), nn.Linear(6, 3), nn.ReLU()

        def forward(self, x):
            return self.relu(self.b(self.relu(self.a(x))))  # one ReLU, two shapes

    with pytest.raises(ValueError, match="called more than once in one forward"):
        module_activations(Shared(), torch.zeros(2, 4), stimulus_ids=[0, 1], layers=["relu"],
                           reduction="random_projection", n_components=2)


def test_cli_channel_axis_output_index_read_batch_and_dtype(tmp_path, model_file,
                                                            monkeypatch):
    """The CLI passes the reading options through: each file equals the Python call."""
    common = ["--stimuli", "rsa92", "--image-size", "16", "--no-progress"]
    runs = {"second": ["--output-index", "1", "--dtype", "float64"],
            "first": ["--dtype", "float64"]}
    for name, extra in runs.items():
        assert main(["extract", f"{model_file}:make_pair", "--layers", "pair", "--out",
                     str(tmp_path / f"{name}.nc"), *common, *extra]) == 0
    second = layer_activation(read_activations(tmp_path / "second.nc"), "pair")
    first = layer_activation(read_activations(tmp_path / "first.nc"), "pair")
    assert second.dtype == np.float64
    np.testing.assert_array_equal(second.values, 2 * first.values)
    assert main(["extract", f"{model_file}:make_net", "--layers", "stem", "--out",
                 str(tmp_path / "h.nc"), "--channel-axis", "2", *common]) == 0
    model = load_factory(f"{model_file}:make_net")()
    ref = module_activations(model, named_stimuli("rsa92"), layers=["stem"], image_size=16,
                             channel_axis=2)["stem"]
    got = layer_activation(read_activations(tmp_path / "h.nc"), "stem")
    assert got.shape == (92, 7)  # the 7 rows of the stride-2 map of a 16-pixel image
    np.testing.assert_array_equal(got.values, ref.values)
    seen = {}

    def recording(*args, **kwargs):  # the folder reading itself is tested above
        seen.update(kwargs)
        return extract_to_file(*args, **kwargs)

    monkeypatch.setattr(extraction, "extract_to_file", recording)
    assert main(["extract", f"{model_file}:make_net", "--layers", "stem", "--out",
                 str(tmp_path / "r.nc"), "--read-batch", "3", *common]) == 0
    assert seen["read_batch"] == 3 and (tmp_path / "r.nc").exists()
    assert main(["extract", f"{model_file}:make_net", "--layers", "stem", "--out",
                 str(tmp_path / "bad.nc"), "--channel-axis", "5", *common]) == 2
    assert not (tmp_path / "bad.nc").exists()


def test_a_dask_backed_stimulus_set_is_read_batch_by_batch(tmp_path, model_file):
    """Each batch's images are read when it runs, not the whole set first (a stimulus set
    larger than memory can be extracted)."""
    dask = pytest.importorskip("dask")
    import dask.array as da

    events = []
    images = np.random.default_rng(2).integers(0, 256, (12, 12, 12, 3), dtype=np.uint8)

    def read(start):  # an on-disk image store: records which rows are read, and when
        events.append(("read", start))
        return images[start:start + 4]

    lazy = da.concatenate([da.from_delayed(dask.delayed(read)(s), (4, 12, 12, 3), np.uint8)
                           for s in range(0, 12, 4)])
    stimuli = xr.Dataset({"image": (("stimulus", "y", "x", "channel"), lazy)},
                         coords={"stimulus": np.arange(12)})
    model = load_factory(f"{model_file}:make_net")()
    model.stem.register_forward_hook(lambda *_: events.append(("forward", None)))
    path = extract_to_file(model, stimuli, tmp_path / "d.nc", layers=["stem"], batch_size=4)
    first_forward = events.index(("forward", None))
    assert [e for e in events[:first_forward] if e[0] == "read"] == [("read", 0)]
    assert {("read", 4), ("read", 8)} <= set(events[first_forward:])
    ref = module_activations(model, images, stimulus_ids=np.arange(12), layers=["stem"],
                             batch_size=4)["stem"]
    np.testing.assert_array_equal(layer_activation(read_activations(path), "stem").values,
                                  ref.values)
