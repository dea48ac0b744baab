"""Searchlight spheres over a 3-D mask, stored as compressed sparse rows (CSR).

Voxel ``v`` of a mask is row ``v`` of ``np.argwhere(mask)`` (C order: ``i`` slowest, ``k``
fastest), the order in which :func:`~rsa_bias.brain.nifti.patterns_from_nifti` numbers its
voxels. Sphere ``c`` (centred on mask voxel ``centres[c]``) holds the mask voxels
``indices[indptr[c]:indptr[c + 1]]`` (ascending) whose world positions (the affine applied to
their ``(i, j, k)``) lie within ``radius_mm`` of the centre's. The neighbours are found with a
KD-tree, a block of centres at a time, so that no Python list of all spheres is ever held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Centres queried at a time (bounds the KD-tree's temporary lists).
QUERY_BLOCK = 8192
#: Relative slack on the radius, so that a voxel exactly at ``radius_mm`` (up to the round-off
#: of the affine) is inside.
RADIUS_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class SearchlightSpheres:
    """The spheres of a searchlight: which mask voxels each centre's sphere holds.

    Attributes
    ----------
    indptr : numpy.ndarray of int64, shape (n_centres + 1,)
        Sphere ``c`` is ``indices[indptr[c]:indptr[c + 1]]``.
    indices : numpy.ndarray of int32 or int64, shape (n_members,)
        Mask-voxel numbers (rows of ``np.argwhere(mask)``), ascending within each sphere.
    centres : numpy.ndarray of int64, shape (n_centres,)
        The mask-voxel number of each sphere's centre (ascending).
    ijk : numpy.ndarray of int64, shape (n_voxels, 3)
        Grid coordinates of every mask voxel, ``np.argwhere(mask)``.
    mask_shape : tuple of int
        Shape of the 3-D mask.
    affine : numpy.ndarray, shape (4, 4)
        Voxel-to-world (mm) affine of the mask.
    radius_mm : float
        Sphere radius in mm.
    min_voxels : int
        Centres whose sphere had fewer mask voxels were dropped.
    """

    indptr: np.ndarray
    indices: np.ndarray
    centres: np.ndarray
    ijk: np.ndarray
    mask_shape: tuple[int, int, int]
    affine: np.ndarray
    radius_mm: float
    min_voxels: int

    @property
    def n_voxels(self) -> int:
        """Number of mask voxels (the length of the data's voxel dim)."""
        return int(self.ijk.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """Voxels in each sphere, shape (n_centres,)."""
        return np.diff(self.indptr)

    def __len__(self) -> int:
        return int(self.centres.size)

    def sphere(self, c: int) -> np.ndarray:
        """The mask-voxel numbers of sphere ``c``."""
        return self.indices[self.indptr[c]:self.indptr[c + 1]]

    def __repr__(self) -> str:
        sizes = self.sizes
        span = f"{sizes.min()}-{sizes.max()}" if sizes.size else "-"
        return (f"SearchlightSpheres({len(self)} centres of {self.n_voxels} mask voxels, "
                f"radius {self.radius_mm:g} mm, {span} voxels per sphere)")


def world_positions(ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of grid coordinates ``ijk (n, 3)`` under a 4x4 affine."""
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def build_spheres(mask: np.ndarray, affine: np.ndarray, radius_mm: float,
                  min_voxels: int) -> SearchlightSpheres:
    """The CSR spheres of a checked boolean ``mask`` and ``affine`` (see the module docstring)."""
    from scipy.spatial import cKDTree

    ijk = np.argwhere(mask).astype(np.int64)
    xyz = world_positions(ijk.astype(np.float64), affine)
    tree = cKDTree(xyz)
    r = radius_mm * (1 + RADIUS_SLACK)
    index_dtype = np.int32 if ijk.shape[0] < 2**31 else np.int64
    counts, parts = [], []
    for start in range(0, ijk.shape[0], QUERY_BLOCK):
        hits = tree.query_ball_point(xyz[start:start + QUERY_BLOCK], r, return_sorted=True)
        sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        keep = sizes >= min_voxels
        counts.append(np.where(keep, sizes, -1))
        kept = [h for h, k in zip(hits, keep, strict=True) if k]
        parts.append(np.fromiter((v for h in kept for v in h), dtype=index_dtype,
                                 count=int(sizes[keep].sum())))
    sizes = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    centres = np.flatnonzero(sizes >= 0)
    indptr = np.zeros(centres.size + 1, dtype=np.int64)
    np.cumsum(sizes[centres], out=indptr[1:])
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=index_dtype)
    return SearchlightSpheres(indptr=indptr, indices=indices, centres=centres.astype(np.int64),
                              ijk=ijk, mask_shape=tuple(int(s) for s in mask.shape),
                              affine=np.array(affine, dtype=np.float64),
                              radius_mm=float(radius_mm), min_voxels=int(min_voxels))


def equal_size_groups(spheres: SearchlightSpheres, start: int, stop: int):
    """``(rows, members)`` for each sphere size among centres ``start:stop``: the sphere
    numbers and their voxels as one ``(len(rows), size)`` array, for batched kernels."""
    sizes = spheres.sizes[start:stop]
    for size in np.unique(sizes):
        rows = start + np.flatnonzero(sizes == size)
        members = spheres.indices[spheres.indptr[rows][:, None] + np.arange(size)]
        yield rows, members
