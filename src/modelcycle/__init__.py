"""modelcycle: carry a tabular ML model through its whole life, embedded by default."""

__version__ = "0.1.0"

__all__ = ["__version__"]
