"""The package version, written once: setup.cfg reads it (``attr:``), the docs show it."""

__version__ = "0.1.0"
