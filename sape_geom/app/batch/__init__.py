"""Batch fitting of a folder of meshes: ``jobs`` (one mesh and its CSV row), backends ``local`` and
``ray_backend``, and :func:`run_batch` tying them together (resumable)."""

from .run import run_batch

__all__ = ["run_batch"]
