"""The instance format: loading, validation, the frozen :class:`Instance`, and changes at key paths.

A YAML file or a mapping goes in, a frozen :class:`Instance` with every series
resolved per horizon year comes out, or an :class:`~optimizer.errors.InstanceError`
listing every problem with its key path.  Past this package the data is trusted.

The format is described once, as pydantic models (:mod:`.models`, built from
:mod:`.fields`).
"""

from .changes import ChangeError, Factor, Shift, concrete_changes, parse_values, parse_vary, set_path
from .core import Instance, load_instance, parse_instance
from .data import Budget, Chip, Installed, Objective, Power, Region, Series, Training, canonical_json, plain
from .limits import (
    MAX_CHIPS,
    MAX_FILE_BYTES,
    MAX_HORIZON_YEARS,
    MAX_MAGNITUDE,
    MAX_REGIONS,
    MAX_YAML_NODES,
    MIN_MAGNITUDE,
    YEAR_RANGE,
)
from .loader import parse_yaml

__all__ = [
    "MAX_CHIPS", "MAX_FILE_BYTES", "MAX_HORIZON_YEARS", "MAX_MAGNITUDE", "MAX_REGIONS", "MAX_YAML_NODES",
    "MIN_MAGNITUDE", "YEAR_RANGE", "Budget", "ChangeError", "Chip", "Factor", "Installed", "Instance",
    "Objective", "Power", "Region", "Series", "Shift", "Training", "canonical_json", "concrete_changes",
    "load_instance", "parse_instance", "parse_values", "parse_vary", "parse_yaml", "plain", "set_path",
]
