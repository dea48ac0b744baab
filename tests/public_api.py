"""The public API as the convention and docstring tests walk it, and a small numpydoc parser."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator

#: Modules whose ``__all__`` is public API (``rsa_bias`` itself lists the analysis measures).
PUBLIC_MODULES = ("rsa_bias", "rsa_bias.brain", "rsa_bias.store", "rsa_bias.interop",
                  "rsa_bias.plotting", "rsa_bias.tasks", "rsa_bias.networks",
                  "rsa_bias.training", "rsa_bias.experiments")


def public_objects() -> Iterator[tuple[str, object]]:
    """``(qualified name, object)`` of every function and class in a public ``__all__``."""
    seen = set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{name}.{attr}", obj


def public_functions() -> Iterator[tuple[str, object]]:
    return ((n, o) for n, o in public_objects() if not inspect.isclass(o))


def documented_parameters(obj: object) -> dict[str, str]:
    """Parameter name -> its description, from the numpydoc ``Parameters`` section."""
    return _section_entries(obj, "Parameters")


def documented_attributes(obj: object) -> dict[str, str]:
    """Attribute name -> its description, from the numpydoc ``Attributes`` section."""
    return _section_entries(obj, "Attributes")


def _section_entries(obj: object, title: str) -> dict[str, str]:
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, line in enumerate(lines[:-1])
                     if line.strip() == title and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return out
    current: list[str] = []
    for i in range(start + 2, len(lines)):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"} \
                and not line.startswith(" "):
            break  # the next section
        if line and not line.startswith(" "):
            names = line.split(" : ")[0]
            current = [n.strip().lstrip("*") for n in re.split(r",\s*", names) if n.strip()]
            for n in current:
                out[n] = line
        elif current:
            for n in current:
                out[n] += "\n" + line
    return out


def has_section(obj: object, title: str) -> bool:
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    return any(line.strip() == title and set(lines[i + 1].strip()) == {"-"}
               for i, line in enumerate(lines[:-1]))


def signature_parameters(obj: object) -> list[inspect.Parameter]:
    """The parameters a user passes (no ``self``); a class's are its ``__init__``'s."""
    sig = inspect.signature(obj)
    return [p for p in sig.parameters.values() if p.name != "self"]
