"""Pipelines: the protocol in `base`, lookup by name in `registry`."""

from framequeue.pipelines.registry import available_pipelines, get_pipeline

__all__ = ["available_pipelines", "get_pipeline"]
