"""One regression model, reused under a namespace per instance."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
