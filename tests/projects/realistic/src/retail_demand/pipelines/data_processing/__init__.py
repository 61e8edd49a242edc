"""Raw inputs (Excel, SQL, CSV partitions) to one model input table."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
