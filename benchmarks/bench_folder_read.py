"""Reading a folder of JPEG photographs for extraction: rsa_bias vs a PyTorch DataLoader.

A folder of ``--images`` JPEGs (``--height`` x ``--width``, smooth random colour fields, quality
90) is read in batches of 64 as 224-pixel network input with torchvision's evaluation geometry
(shorter side to 256, centre 224 crop):

1. ``rsa_bias.store.images.ImageFolderArray(..., prep="imagenet", workers=W)`` sliced batch by
   batch, as ``extract_to_file`` reads it (threads decode each block, the next block is read
   ahead), for W = 0 (one thread, no read-ahead) and W = ``--workers``;
2. what a user would write instead: a map-style ``torch.utils.data.Dataset`` that opens each
   file with Pillow, resizes and crops it the same way (torchvision's ``Resize(256)`` +
   ``CenterCrop(224)`` arithmetic), and a ``DataLoader(batch_size=64, num_workers=W)``.

Both give the same pixels (checked). Also timed end to end: a small CNN run on every batch
(``extract_to_file`` vs the DataLoader loop with the same model), where reading ahead overlaps
decoding with the forward pass. Printed: images per second and the ratios.

Run: ``python benchmarks/bench_folder_read.py [--images 512] [--workers 2] [--repeats 3]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _timing import best_of, int_options
from PIL import Image
from torch import nn

from rsa_bias._image_prep import crop_geometry
from rsa_bias.experiments.extraction import extract_to_file
from rsa_bias.store.images import ImageFolderArray, image_folder_stimuli

BATCH = 64


def write_folder(folder: Path, n: int, height: int, width: int) -> list[str]:
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        img.save(folder / f"{i:05d}.jpg", quality=90)
    return sorted(p.name for p in folder.glob("*.jpg"))


class PillowCrops(torch.utils.data.Dataset):
    """The user's own Dataset: Pillow open, Resize(256), CenterCrop(224), as uint8."""

    def __init__(self, folder: Path, ids: list[str]) -> None:
        self.folder, self.ids = folder, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> np.ndarray:
        with Image.open(self.folder / self.ids[i]) as img:
            img = img.convert("RGB")
            h, w, top, left = crop_geometry(img.height, img.width, 224, 256)
            img = img.resize((w, h), Image.Resampling.BILINEAR)
            return np.array(img.crop((left, top, left + 224, top + 224)))  # writable


def loader_batches(folder, ids, workers):
    return torch.utils.data.DataLoader(PillowCrops(folder, ids), batch_size=BATCH,
                                       num_workers=workers)


def ours_batches(folder, ids, workers):
    arr = ImageFolderArray(folder, ids, size=224, prep="imagenet", workers=workers, block=256)
    try:
        for s in range(0, len(ids), BATCH):
            yield arr[s:s + BATCH]
    finally:
        arr.close()


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 5, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def loader_extract(model, folder, ids, workers):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for batch in loader_batches(folder, ids, workers):
            x = (batch.permute(0, 3, 1, 2).float() / 255 - mean) / std
            out.append(model(x).numpy())
    return np.concatenate(out)


def main() -> int:
    p = int_options(__doc__, images=512, height=375, width=500, workers=2, repeats=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        ids = write_folder(folder, args.images, args.height, args.width)
        ids = [str(i) for i in image_folder_stimuli(folder)["stimulus"].values]
        n = len(ids)
        want = np.concatenate(list(loader_batches(folder, ids, 0)))
        rows = []
        for name, fn in [
            ("rsa_bias, workers=0", lambda: np.concatenate(list(ours_batches(folder, ids, 0)))),
            (f"rsa_bias, workers={args.workers}",
             lambda: np.concatenate(list(ours_batches(folder, ids, args.workers)))),
            ("DataLoader, num_workers=0",
             lambda: np.concatenate(list(loader_batches(folder, ids, 0)))),
            (f"DataLoader, num_workers={args.workers}",
             lambda: np.concatenate(list(loader_batches(folder, ids, args.workers)))),
        ]:
            t, got = best_of(fn, args.repeats)
            assert np.array_equal(got, want), name
            rows.append((name, t))
        print(f"reading {n} JPEGs {args.height}x{args.width} -> 224x224 (Resize 256, "
              f"CenterCrop 224), batches of {BATCH}, best of {args.repeats}:")
        for name, t in rows:
            print(f"  {name:28s} {t:6.2f} s  {n / t:7.1f} images/s")
        print(f"  ratio DataLoader(num_workers={args.workers}) / rsa_bias(workers="
              f"{args.workers}): {rows[3][1] / rows[1][1]:.2f}x (above 1: rsa_bias faster)")
        print(f"  rsa_bias workers={args.workers} vs workers=0: {rows[0][1] / rows[1][1]:.2f}x")

        model = small_cnn()
        ends = []
        for workers in (0, args.workers):
            def ours(workers=workers):
                path = Path(tmp) / f"acts_{workers}.nc"
                t0 = time.perf_counter()
                extract_to_file(model, folder, path, layers=["5"], batch_size=BATCH,
                                image_size=224, image_prep="imagenet", read_workers=workers,
                                read_batch=256)
                return time.perf_counter() - t0
            t_ours = min(ours() for _ in range(args.repeats))
            t_loader, _ = best_of(lambda w=workers: loader_extract(model, folder, ids, w),
                                  args.repeats)
            ends.append((workers, t_ours, t_loader))
        print("end to end with a small CNN (torch 1 thread), file written vs arrays in memory:")
        for workers, t_ours, t_loader in ends:
            print(f"  workers={workers}: rsa_bias extract_to_file {t_ours:6.2f} s, DataLoader "
                  f"loop {t_loader:6.2f} s, ratio {t_loader / t_ours:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
