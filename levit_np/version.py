"""The package version (also written into every converted weights file as its converter version)."""

__version__ = "0.1.0"
