"""sape_geom: Spatially-Adaptive Progressive Encoding for neural shape fitting."""

__version__ = "0.1.0"
