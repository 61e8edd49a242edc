"""The release number, in a leaf module so any layer can read it without importing the root."""

from __future__ import annotations

__version__ = "0.1.0"
