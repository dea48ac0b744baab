"""The API helpers: option look-up with an error listing the valid names (:func:`choose`),
and calls written for an earlier signature that keep working, with a FutureWarning that says
what to write instead (:func:`legacy_call`; the convention they now follow is in
``docs/api.md``)."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

REMOVED_IN = "0.3"


def choose(registry: Mapping[str, T], key: str, what: str) -> T:
    """``registry[key]``, or a ValueError naming the unknown key and listing the valid ones.

    Parameters
    ----------
    registry : mapping of str -> object
        The options (methods, kernels, experiments, ...) by name.
    key : str
        The name asked for.
    what : str
        What the options are, for the message (``"RDM method"``).

    Returns
    -------
    object
        ``registry[key]``.

    Examples
    --------
    >>> choose({"a": 1, "b": 2}, "b", "option")
    2
    """
    try:
        return registry[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {key!r}; valid: {sorted(registry)}") from None


def _is_names(value: Any) -> bool:
    """A feature list: a string or a sequence of strings (not an xarray object)."""
    if isinstance(value, str):
        return True
    if hasattr(value, "dims") or not isinstance(value, Sequence):
        return False
    return all(isinstance(v, str) for v in value)


def _target(name: str, value: Any) -> str:
    """Where a legacy positional ``stimuli`` / ``features`` argument belongs: a stimulus set
    (anything with dims) is ``stimuli``, a list of names is ``features``, whatever its old
    position said."""
    if name in ("stimuli", "features"):
        if _is_names(value):
            return "features"
        if hasattr(value, "dims"):
            return "stimuli"
    return name


def _warn(fn: Callable, what: str) -> None:
    warnings.warn(f"{fn.__qualname__}(): {what}; the old form stops working in rsa_bias "
                  f"{REMOVED_IN}", FutureWarning, stacklevel=3)


def legacy_call(*, positional: Sequence[str] = (), renamed: Mapping[str, str] | None = None,
                folded: Mapping[str, tuple[Sequence[str], Callable[..., Any]]] | None = None,
                ) -> Callable[[F], F]:
    """Accept the previous signature of the decorated function, with a FutureWarning.

    Parameters
    ----------
    positional : sequence of str
        Parameters that used to be positional after today's positional ones, in their old
        order (now keyword-only). A legacy ``stimuli`` / ``features`` argument is placed by
        its type (a Dataset is ``stimuli``, names are ``features``).
    renamed : mapping of str -> str, optional
        Old keyword -> new keyword.
    folded : mapping, optional
        New keyword -> (old keywords, builder): old keywords that are now one object, e.g.
        ``{"estimator": (("alphas", "solver"), lambda **kw: RidgeEncoder(**kw))}``.

    Returns
    -------
    callable
        The decorator; the wrapped function keeps today's signature (``inspect.signature``).
    """
    renamed = dict(renamed or {})
    folded = dict(folded or {})

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        n_pos = sum(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                    for p in sig.parameters.values())

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_pos and positional:
                extra, args = args[n_pos:], args[:n_pos]
                if len(extra) > len(positional):
                    raise TypeError(f"{fn.__qualname__}() takes {n_pos} positional "
                                    f"argument(s) but {n_pos + len(extra)} were given")
                moved = {}
                for name, value in zip(positional, extra, strict=False):
                    key = _target(name, value)
                    if key in kwargs or key in moved:
                        raise TypeError(f"{fn.__qualname__}() got {key!r} twice")
                    moved[key] = value
                _warn(fn, "pass " + ", ".join(f"{k}=" for k in moved) + " by keyword")
                kwargs.update(moved)
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got both {old!r} (old name) "
                                        f"and {new!r}")
                    _warn(fn, f"{old}= is now {new}=")
                    kwargs[new] = kwargs.pop(old)
            for new, (olds, build) in folded.items():
                given = {k: kwargs.pop(k) for k in olds if k in kwargs}
                if given:
                    if kwargs.get(new) is not None:
                        raise TypeError(f"{fn.__qualname__}() got {new}= and the old "
                                        f"options {sorted(given)} it replaces")
                    _warn(fn, f"{', '.join(f'{k}=' for k in given)} are now {new}=...")
                    kwargs[new] = build(**given)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
