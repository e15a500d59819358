"""Import kubernetes_asyncio without its generated API and model classes.

``kubernetes_asyncio/__init__.py`` and ``kubernetes_asyncio.client``'s import every generated
API class and every model (about 1,400 modules): 73 MiB of RSS per process and, on a loaded
machine, seconds of start-up CPU. We use the library only for kubeconfig loading and its
``ApiClient.call_api`` with raw JSON (see ``client.py``); kopf looks up two model classes.

``install()`` puts lazy stand-ins for the two packages (and ``client.models``) in
``sys.modules``: submodules load from disk as usual, and a name looked up on a package loads
just the module that defines it (``V1ObjectMeta`` -> ``models/v1_object_meta.py``). Anything
else falls back to running the real ``__init__`` in place, so every import still works, only
the cost moves to whoever needs it. Must run before the first import of kubernetes_asyncio:
``exocorp/__init__.py`` calls it (a no-op when the library was imported already)."""

from __future__ import annotations

import importlib
import importlib.machinery
import re
import sys
import types
from typing import Any

_ROOT = "kubernetes_asyncio"
_CLIENT = f"{_ROOT}.client"
_MODELS = f"{_CLIENT}.models"
# Where a class exported by each package may be defined (its module named after it).
_HOMES = {_ROOT: (), _CLIENT: (_CLIENT, _MODELS), _MODELS: (_MODELS,)}


def _snake(name: str) -> str:
    """``V1ObjectMeta`` -> ``v1_object_meta``: the generator's file naming."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _LazyPackage(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # __version__, __all__: what the real __init__ defines
            return self._load_fully(name)
        if name.islower():  # a submodule: ``from kubernetes_asyncio.client import rest``
            module = _import(f"{self.__name__}.{name}")
            if module is not None:
                return module
        for home in _HOMES[self.__name__]:
            module = _import(f"{home}.{_snake(name)}")
            value = getattr(module, name, None)
            if value is not None:
                setattr(self, name, value)
                return value
        return self._load_fully(name)

    def _load_fully(self, name: str) -> Any:
        if not self.__dict__.get("_exocorp_loaded"):
            self.__dict__["_exocorp_loaded"] = True
            spec = self.__spec__
            assert spec is not None
            assert spec.loader is not None
            spec.loader.exec_module(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None


def _import(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None


def install() -> None:
    if _ROOT in sys.modules:
        return
    path: list[str] | None = None
    for name in (_ROOT, _CLIENT, _MODELS):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.submodule_search_locations is None:
            return  # not installed, or laid out differently: import it the ordinary way
        module = _LazyPackage(name)
        module.__spec__ = spec
        module.__path__ = list(spec.submodule_search_locations)
        module.__file__ = spec.origin
        module.__loader__ = spec.loader
        module.__package__ = name
        sys.modules[name] = module
        if name != _ROOT:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)
        path = module.__path__
