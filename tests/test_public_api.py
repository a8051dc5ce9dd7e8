"""The public API: every module's ``__all__`` is what the API reference shows, and every public function and
class there carries a docstring with an example that pytest runs as a doctest (``--doctest-modules``)."""

import importlib
import inspect
import pkgutil

import pytest

import steerable3d


def public_modules():
    yield steerable3d
    for info in pkgutil.walk_packages(steerable3d.__path__, "steerable3d."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


MODULES = list(public_modules())


def public_objects():
    for module in MODULES:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_module_declares_its_public_names(module):
    assert module.__doc__ and module.__doc__.strip(), f"{module.__name__} has no module docstring"
    assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module.__name__}.__all__ names what it lacks: {missing}"


@pytest.mark.parametrize("name,obj", list(public_objects()), ids=[name for name, _ in public_objects()])
def test_public_object_has_a_doctest_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ">>>" in doc, f"{name}: its docstring has no example (a '>>>' doctest)"
    assert "doctest: +SKIP" not in doc, f"{name}: its example is skipped; an example must run"
