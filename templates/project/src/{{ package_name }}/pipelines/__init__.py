"""One sub-package per pipeline, each with a create_pipeline() function."""
