"""The warning a ridge fit gives when targets choose the smallest alpha of the grid, and the
context that folds the warnings of many fits (folds, feature subsets) into one."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np


class AlphaGridWarning(UserWarning):
    """The cross-validated alpha of some targets sits at the lower edge of the grid.

    Issued by :meth:`RidgeEncoder.fit` when targets choose the smallest alpha of a grid
    of several: the best alpha may be smaller still, so the fit is over-regularised (the
    largest alpha is the normal choice for targets without signal and is not warned
    about). Functions that fit many models fold these warnings into one
    (:func:`one_alpha_warning`).

    Examples
    --------
    >>> import warnings
    >>> from rsa_bias.analysis.encoding import RidgeEncoder
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 4))
    >>> Y = X @ rng.normal(size=(4, 3))  # noiseless: the smallest alpha fits best
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = RidgeEncoder(alphas=[1.0, 10.0]).fit(X, Y)
    >>> [w.category.__name__ for w in caught]
    ['AlphaGridWarning']
    """


def _warn_lower_edge(chosen: np.ndarray, alphas: np.ndarray) -> None:
    """Warn when targets choose the smallest alpha of a grid of several: the best alpha may
    be smaller still, so the fit is over-regularised. (The largest alpha is the normal choice
    for targets without signal and is not warned about.)"""
    if alphas.size < 2:
        return
    at_edge = int(np.sum(chosen == alphas.min()))
    if at_edge:
        warnings.warn(
            f"{at_edge} of {chosen.size} targets chose the smallest alpha of the grid "
            f"({alphas.min():g}); a smaller alpha may fit better. Widen the grid, e.g. "
            f"alphas=np.logspace({int(np.floor(np.log10(alphas.min()))) - 4}, "
            f"{int(np.ceil(np.log10(alphas.max())))}, 15)", AlphaGridWarning, stacklevel=3)


@contextlib.contextmanager
def one_alpha_warning(what: str) -> Iterator[None]:
    """Fold the :class:`AlphaGridWarning` of many fits into one warning about ``what``.

    For cross-validation folds, feature subsets and the like; other warnings pass
    through unchanged.

    Parameters
    ----------
    what : str
        Names the computation in the folded warning (e.g. ``"cross_validated_scores"``).

    Yields
    ------
    None
        The context in which the fits run.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from rsa_bias.analysis.encoding import RidgeEncoder
    >>> X = np.random.default_rng(1).normal(size=(40, 3))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with one_alpha_warning("two fits"):
    ...         for _ in range(2):  # noiseless targets: the smallest alpha fits best
    ...             _ = RidgeEncoder(alphas=[1.0, 10.0]).fit(X, 2 * X)
    >>> len(caught), str(caught[0].message).startswith("two fits: in 2 ridge fit(s)")
    (1, True)
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    edge = [w for w in caught if issubclass(w.category, AlphaGridWarning)]
    for w in caught:
        if w not in edge:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if edge:
        warnings.warn(f"{what}: in {len(edge)} ridge fit(s) some targets chose the smallest "
                      f"alpha of the grid; a smaller alpha may fit better. First fit: "
                      f"{edge[0].message}", AlphaGridWarning, stacklevel=3)
