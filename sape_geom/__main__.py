"""``python -m sape_geom`` runs the command line."""

from .app.cli import entrypoint

entrypoint()
