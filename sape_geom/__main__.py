"""``python -m sape_geom`` runs the command line."""

from .cli import entrypoint

entrypoint()
