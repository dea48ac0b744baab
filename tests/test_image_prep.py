"""Image preparation: stretch or resize-and-centre-crop (torchvision's geometry), the
per-channel normalisation, EXIF orientation, and the same setting from a folder, an array,
the Python call and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from rsa_bias._image_prep import IMAGENET_MEAN, IMAGENET_STD, crop_geometry
from rsa_bias.cli import main
from rsa_bias.experiments.extraction import extract_to_file
from rsa_bias.networks import IMAGE_PREPS, ImagePrep, prepare_images
from rsa_bias.networks.cnn import prepare_images as prepare_images_from_cnn
from rsa_bias.store import layer_activation, read_activations
from rsa_bias.store.images import read_images
from rsa_bias.training.extract import module_activations

RNG = np.random.default_rng(7)


def _save(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("hw, size, shorter, want", [
    ((375, 500), 224, 256, (256, 341, 16, 58)),    # landscape: 256 * 500 / 375 = 341.3 -> 341
    ((500, 375), 224, 256, (341, 256, 58, 16)),    # portrait
    ((224, 224), 224, 224, (224, 224, 0, 0)),
    ((12, 15), 6, 12, (12, 15, 3, 4)),             # (15 - 6) / 2 = 4.5 rounds to even: 4
    ((12, 17), 6, 12, (12, 17, 3, 6)),             # 5.5 rounds to even: 6
])
def test_crop_geometry_has_torchvisions_rounding(hw, size, shorter, want):
    assert crop_geometry(*hw, size, shorter) == want


def test_presets_and_validation():
    assert ImagePrep.named(None) == ImagePrep() == IMAGE_PREPS["unit"]
    net = IMAGE_PREPS["imagenet"]
    assert (net.crop_fraction, net.mean, net.std) == (0.875, IMAGENET_MEAN, IMAGENET_STD)
    assert net.shorter_side(224) == 256 and ImagePrep().shorter_side(224) == 224
    with pytest.raises(ValueError, match=r"unknown image_prep 'inet'.*imagenet"):
        ImagePrep.named("inet")
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match="crop_fraction must be in"):
            ImagePrep(crop_fraction=bad)
    with pytest.raises(ValueError, match="std must be positive"):
        ImagePrep(std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="mean must be three"):
        ImagePrep(mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="needs the output size"):
        prepare_images(np.zeros((1, 4, 4, 3), np.uint8), size=None, prep="imagenet")
    assert prepare_images is prepare_images_from_cnn


def test_normalisation_is_pixel_over_255_minus_mean_over_std():
    img = RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    prep = ImagePrep(crop_fraction=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    got = prepare_images(img, size=8, prep=prep).numpy()
    want = ((img / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD))
    np.testing.assert_allclose(got, want.transpose(0, 3, 1, 2), rtol=0, atol=2e-6)
    unit = prepare_images(img, size=8).numpy()  # the default: 2 * pixel / 255 - 1
    want = 2 * img.astype(float) / 255 - 1
    np.testing.assert_allclose(unit, want.transpose(0, 3, 1, 2), rtol=0, atol=1e-6)


def test_centre_crop_of_arrays_without_resizing_is_exact():
    img = RNG.integers(0, 256, (3, 12, 15, 3), dtype=np.uint8)
    got = prepare_images(img, size=6, prep=ImagePrep(crop_fraction=0.5)).numpy()
    want = prepare_images(np.ascontiguousarray(img[:, 3:9, 4:10]), size=None).numpy()
    np.testing.assert_array_equal(got, want)
    stretched = prepare_images(img, size=6).numpy()
    assert np.abs(stretched - got).max() > 0.5  # the stretch is another image


def test_centre_crop_resizes_the_shorter_side_and_keeps_the_aspect_ratio():
    # 20 x 40: dark 10-column bands at both ends, bright middle. Shorter side 10 -> 10 x 20,
    # whose centre 10 columns are the original columns 10..30: all bright.
    img = np.zeros((1, 20, 40, 3), np.uint8)
    img[:, :, 10:30] = 255
    got = prepare_images(img, size=10, prep=ImagePrep(crop_fraction=1.0)).numpy()[0]
    assert got.shape == (3, 10, 10)
    np.testing.assert_allclose(got[:, :, 1:-1], 1.0, atol=1e-6)  # edge columns: filter spill
    stretched = prepare_images(img, size=10).numpy()[0]
    assert stretched[:, :, 0].max() < -0.9  # stretching keeps the dark bands


def test_folder_crop_is_pillows_resize_then_centre_crop(tmp_path):
    # torchvision's Resize(256) + CenterCrop(224) on a 375 x 500 Pillow image, in its numbers
    img = RNG.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    _save(tmp_path / "f", [img])
    got = read_images(tmp_path / "f", ["0.png"], size=224, crop_fraction=0.875)[0]
    want = np.asarray(Image.fromarray(img).resize((341, 256), Image.Resampling.BILINEAR)
                      .crop((58, 16, 282, 240)))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="needs the output size"):
        read_images(tmp_path / "f", ["0.png"], crop_fraction=0.875)


def test_exif_orientation_is_applied(tmp_path):
    img = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phone cameras write
    (tmp_path / "f").mkdir()
    Image.fromarray(img).save(tmp_path / "f" / "0.png", exif=exif)
    got = read_images(tmp_path / "f", ["0.png"])[0]
    np.testing.assert_array_equal(got, np.rot90(img, k=-1))


@pytest.fixture()
def conv():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())


def test_folder_and_array_and_cli_give_the_same_crop(tmp_path, conv):
    imgs = RNG.integers(0, 256, (4, 12, 15, 3), dtype=np.uint8)
    folder = _save(tmp_path / "imgs", imgs)
    prep = ImagePrep(crop_fraction=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    ids = [f"{i}.png" for i in range(4)]
    ref = module_activations(conv, imgs, stimulus_ids=ids, layers=["1"], image_size=6,
                             image_prep=prep)["1"]
    path = extract_to_file(conv, folder, tmp_path / "a.nc", layers=["1"], image_size=6,
                           image_prep=prep, batch_size=4)
    tree = read_activations(path)
    np.testing.assert_array_equal(layer_activation(tree, "1").values, ref.values)
    assert json.loads(tree.attrs["config_json"])["image_prep"] == prep.to_dict()
    unit = module_activations(conv, imgs, stimulus_ids=ids, layers=["1"], image_size=6)["1"]
    assert np.abs(unit.values - ref.values).max() > 0.1

    model_file = tmp_path / "m.py"
    model_file.write_text("import torch\n\ndef make():\n    torch.manual_seed(0)\n    return "
                          "torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n")
    argv = ["extract", f"{model_file}:make", "--stimuli", str(folder), "--layers", "1",
            "--image-size", "6", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "c.nc"), "--image-prep", "imagenet",
                 "--crop-fraction", "0.5"]) == 0
    cli = layer_activation(read_activations(tmp_path / "c.nc"), "1")
    np.testing.assert_array_equal(cli.values, ref.values)
    assert main([*argv, "--out", str(tmp_path / "d.nc"), "--crop-fraction", "0.5",
                 "--mean", ",".join(map(str, IMAGENET_MEAN)),
                 "--std", ",".join(map(str, IMAGENET_STD))]) == 0
    np.testing.assert_array_equal(layer_activation(read_activations(tmp_path / "d.nc"),
                                                   "1").values, ref.values)


@pytest.mark.parametrize("extra, match", [
    (["--image-prep", "inet"], "invalid choice"),
    (["--crop-fraction", "1.5"], "crop_fraction must be in"),
    (["--std", "1,2"], "three finite numbers"),
])
def test_cli_image_prep_errors(tmp_path, capsys, extra, match):
    model_file = tmp_path / "m.py"
    model_file.write_text("import torch\n\ndef make():\n    return torch.nn.Sequential("
                          "torch.nn.ReLU())\n")
    folder = _save(tmp_path / "imgs", RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    argv = ["extract", f"{model_file}:make", "--stimuli", str(folder), "--layers", "0",
            "--out", str(tmp_path / "e.nc"), "--no-progress", *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a bad choice or type itself
        code = exc.code
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "e.nc").exists()
