"""Every public function and class documents each of its parameters in a numpydoc
``Parameters`` section (and what it returns in ``Returns``), and documents nothing it does not
take."""

from __future__ import annotations

import inspect

import pytest
from public_api import (
    documented_attributes,
    documented_parameters,
    has_section,
    public_objects,
    signature_parameters,
)

OBJECTS = dict(public_objects())
SKIP_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _documentable(obj) -> bool:
    """Classes whose constructor is inherited (exceptions, warnings) have nothing to list."""
    if not inspect.isclass(obj):
        return True
    return (getattr(obj.__init__, "__module__", None) or "").startswith("rsa_bias") or \
        hasattr(obj, "__dataclass_fields__")


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_every_parameter_is_documented(name):
    obj = OBJECTS[name]
    assert inspect.getdoc(obj), f"{name} has no docstring"
    if not _documentable(obj):
        return
    params = [p.name for p in signature_parameters(obj) if p.kind not in SKIP_KINDS]
    if not params:
        return
    documented = documented_parameters(obj)
    if not documented and hasattr(obj, "__dataclass_fields__"):
        documented = documented_attributes(obj)  # a record lists its fields as Attributes
    missing = [p for p in params if p not in documented]
    assert not missing, f"{name}: document {missing} in a numpydoc Parameters section"
    variadic = {p.name for p in signature_parameters(obj) if p.kind in SKIP_KINDS}
    extra = [p for p in documented if p not in params and p not in variadic]
    assert not extra, f"{name}: documents {extra}, which it does not take"


@pytest.mark.parametrize("name", sorted(n for n, o in OBJECTS.items() if not inspect.isclass(o)))
def test_functions_say_what_they_return(name):
    fn = OBJECTS[name]
    ret = inspect.signature(fn).return_annotation
    if ret in (None, "None"):
        return
    assert has_section(fn, "Returns") or has_section(fn, "Yields"), \
        f"{name}: add a numpydoc Returns section"
