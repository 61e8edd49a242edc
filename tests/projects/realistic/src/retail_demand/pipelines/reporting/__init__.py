"""Reports over both models and the sales themselves."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
