"""The instance format: loading, validation, the frozen :class:`Instance`, and changes at key paths.

A YAML file or a mapping goes in, a frozen :class:`Instance` with every series
resolved per horizon year comes out, or an :class:`~optimizer.errors.InstanceError`
listing every problem with its key path.  Past this package the data is trusted.

The format is described once, as pydantic models (:mod:`.models`, built from
:mod:`.fields`), which both validate files and generate the published JSON
Schema (:mod:`.schema`).  A file with an ``uncertainty`` section also yields
its scenarios (:mod:`.scenarios`), each a validated v1 instance.
"""

from .changes import ChangeError, Factor, Shift, concrete_changes, parse_token, parse_values, parse_vary, set_path
from .core import Instance, load_instance, parse_instance
from .data import (
    Branch,
    Budget,
    Chip,
    FrozenDict,
    Installed,
    Objective,
    Power,
    Region,
    Series,
    Stage,
    Training,
    Uncertainty,
    canonical_json,
    plain,
)
from .limits import (
    MAX_CHIPS,
    MAX_FILE_BYTES,
    MAX_HORIZON_YEARS,
    MAX_MAGNITUDE,
    MAX_REGIONS,
    MAX_SCENARIOS,
    MAX_YAML_NODES,
    MIN_MAGNITUDE,
    YEAR_RANGE,
)
from .loader import parse_yaml
from .tree import ROOT, Scenario, ScenarioTree, cvar, risk_measure

__all__ = [
    "MAX_CHIPS", "MAX_FILE_BYTES", "MAX_HORIZON_YEARS", "MAX_MAGNITUDE", "MAX_REGIONS", "MAX_SCENARIOS",
    "MAX_YAML_NODES", "MIN_MAGNITUDE", "YEAR_RANGE", "Branch", "Budget", "ChangeError", "Chip", "Factor",
    "FrozenDict", "Installed", "Instance", "ROOT", "Objective", "Power", "Region", "Scenario", "ScenarioTree",
    "Series", "Shift", "Stage", "Training",
    "Uncertainty", "canonical_json", "concrete_changes", "cvar", "load_instance", "parse_instance", "parse_token",
    "parse_values", "parse_vary", "parse_yaml", "plain", "risk_measure", "set_path",
]
