"""The plan a solve reports: pandas tables in spec units (spec section 3), their writers and reader."""

from ..files import atomic_write
from .core import FORMATS, INSTANCE_COPY, Plan, read_plan
from .tables import COLUMNS, TABLES

__all__ = ["COLUMNS", "FORMATS", "INSTANCE_COPY", "TABLES", "Plan", "atomic_write", "read_plan"]
