"""The side-by-side benchmark suite of Kilnflow and Kedro, as modules.

``bench/suite.py`` is the command; these modules hold its parts.
"""
