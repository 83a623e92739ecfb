"""The command line: `python -m runtime ...` and the `pyconvex` script."""

from .main import main

__all__ = ["main"]
