"""framequeue: asynchronous deep-learning inference on large media, video first."""

__version__ = "0.1.0"
__all__ = ["__version__"]
