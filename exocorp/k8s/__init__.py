"""Thin async adapter over kubernetes_asyncio: the only package that imports it."""

from exocorp.k8s.client import Kube, Obj
from exocorp.k8s.errors import ApiError
from exocorp.k8s.resources import Resource

__all__ = ["ApiError", "Kube", "Obj", "Resource"]
