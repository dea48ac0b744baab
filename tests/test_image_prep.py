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
    for bad in (0, 1.5, -0.2, 1e-7, float("nan")):
        with pytest.raises(ValueError, match="crop_fraction must be in"):
            ImagePrep(crop_fraction=bad)
    with pytest.raises(ValueError, match="not both"):
        ImagePrep(crop_fraction=0.9, resize_to=256)
    with pytest.raises(ValueError, match="smaller than the crop"):
        ImagePrep(resize_to=200).shorter_side(224)
    with pytest.raises(ValueError, match="string"):
        ImagePrep(mean="123")
    with pytest.raises(ValueError, match="std must be positive"):
        ImagePrep(std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="mean must be three"):
        ImagePrep(mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="needs the crop's side"):
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
    got = read_images(tmp_path / "f", ["0.png"], size=224, prep="imagenet")[0]
    want = np.asarray(Image.fromarray(img).resize((341, 256), Image.Resampling.BILINEAR)
                      .crop((58, 16, 282, 240)))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="needs the crop's side"):
        read_images(tmp_path / "f", ["0.png"], prep="imagenet")
    # Inception v3: Resize(342) + CenterCrop(299), given as the shorter side itself
    got = read_images(tmp_path / "f", ["0.png"], size=299, prep=ImagePrep(resize_to=342))[0]
    want = np.asarray(Image.fromarray(img).resize((456, 342), Image.Resampling.BILINEAR)
                      .crop((78, 22, 377, 321)))
    np.testing.assert_array_equal(got, want)


def test_exif_orientation_read_as_stored_with_a_warning_or_upright(tmp_path):
    img = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phone cameras write
    _save(tmp_path / "f", [img, img])
    Image.fromarray(img).save(tmp_path / "f" / "0.png", exif=exif)
    with pytest.warns(UserWarning, match=r"1 of 2 images carry an EXIF orientation tag "
                                         r"\(e.g. 0.png\).*upright=True"):
        got = read_images(tmp_path / "f", ["0.png", "1.png"])
    np.testing.assert_array_equal(got[0], img)  # as torchvision's loader reads it
    got = read_images(tmp_path / "f", ["0.png"], prep=ImagePrep(upright=True))[0]
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
    # --crop-fraction none: the preset's normalisation on stretched images
    assert main([*argv, "--out", str(tmp_path / "s.nc"), "--image-prep", "imagenet",
                 "--crop-fraction", "none"]) == 0
    stretched = module_activations(conv, imgs, stimulus_ids=ids, layers=["1"], image_size=6,
                                   image_prep=ImagePrep(mean=IMAGENET_MEAN,
                                                        std=IMAGENET_STD))["1"]
    np.testing.assert_allclose(layer_activation(read_activations(tmp_path / "s.nc"),
                                                "1").values, stretched.values, atol=0.05)
    assert np.abs(stretched.values - ref.values).max() > 0.1


def test_provenance_records_what_was_applied(tmp_path, conv):
    floats = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)
    path = extract_to_file(conv, floats, tmp_path / "f.nc", layers=["1"], stimulus_ids=[0, 1, 2],
                           image_prep="imagenet")  # no crop size needed: floats are used as is
    assert json.loads(read_activations(path).attrs["config_json"])["image_prep"] is None
    np.testing.assert_array_equal(
        layer_activation(read_activations(path), "1").values,
        module_activations(conv, floats, stimulus_ids=[0, 1, 2], layers=["1"])["1"].values)
    folder = _save(tmp_path / "imgs", RNG.integers(0, 256, (2, 9, 9, 3), dtype=np.uint8))
    path = extract_to_file(conv, folder, tmp_path / "i.nc", layers=["1"])
    cfg = json.loads(read_activations(path).attrs["config_json"])
    assert cfg["image_size"] == 224 and cfg["image_prep"] == ImagePrep().to_dict()
    with pytest.raises(ValueError, match="needs the crop's side; pass image_size="):
        extract_to_file(conv, RNG.integers(0, 256, (2, 9, 9, 3), dtype=np.uint8),
                        tmp_path / "u.nc", layers=["1"], stimulus_ids=[0, 1],
                        image_prep="imagenet")
    assert not (tmp_path / "u.nc").exists()


@pytest.mark.parametrize("extra, match", [
    (["--image-prep", "inet"], "invalid choice"),
    (["--crop-fraction", "1.5"], "crop_fraction must be in"),
    (["--std", "1,2"], "three finite numbers"),
    (["--crop-fraction", "x"], "or none"),
    (["--image-prep", "imagenet"], "--image-size"),  # a .npy array has no default size
])
def test_cli_image_prep_errors(tmp_path, capsys, extra, match):
    model_file = tmp_path / "m.py"
    model_file.write_text("import torch\n\ndef make():\n    return torch.nn.Sequential("
                          "torch.nn.ReLU())\n")
    np.save(tmp_path / "x.npy", RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    argv = ["extract", f"{model_file}:make", "--stimuli", str(tmp_path / "x.npy"), "--layers",
            "0", "--out", str(tmp_path / "e.nc"), "--no-progress", *extra]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a bad choice or type itself
        code = exc.code
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "e.nc").exists()


def test_compare_refuses_image_options_without_a_model(tmp_path, conv, capsys):
    floats = RNG.normal(size=(92, 3, 8, 8)).astype(np.float32)
    path = extract_to_file(conv, floats, tmp_path / "a.nc", layers=["1"],
                           stimulus_ids=np.arange(92))
    assert main(["compare", str(path), "--dataset", "rsa92", "--out", str(tmp_path / "o"),
                 "--image-prep", "imagenet"]) == 2
    assert "apply only when a model" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--image-size", "32"]) == 2
    assert "apply only to a model" in capsys.readouterr().err


def test_a_folder_warns_once_about_tagged_images(tmp_path):
    import warnings

    from rsa_bias.store.images import ImageFolderArray

    imgs = RNG.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    folder = _save(tmp_path / "f", imgs)
    exif = Image.Exif()
    exif[0x0112] = 3
    for i in (1, 4):  # in the first and the third block of two
        Image.fromarray(imgs[i]).save(folder / f"{i}.png", exif=exif)
    arr = ImageFolderArray(folder, [f"{i}.png" for i in range(5)], size=6, block=2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = np.concatenate([arr[s:s + 2] for s in range(0, 5, 2)])
    assert [str(w.message)[:48] for w in seen] == [
        "1 of the first 2 images read carry an EXIF orien"]  # once: not again for image 4
    np.testing.assert_array_equal(got, imgs)
