"""The mathematics of capplan: the Pyomo model of spec model-v1 section 2 over the scenario tree of model-v2.

:func:`build_model` assembles it from one module per part of the plan
(:mod:`.fleet`, :mod:`.facilities`, :mod:`.serving`, :mod:`.money`,
:mod:`.training`, :mod:`.salvage`, :mod:`.risk`, :mod:`.commitments`); every
constraint family, parameter and variable is declared once in
:mod:`.registry`.
"""

from .commitments import Commitments
from .model import ModelInfo, build_model, structure_key, update_model
from .params import HOURS_PER_YEAR
from .registry import FAMILIES, PARAMETERS, VARIABLES
from .rows import row_label, split_index
from .scaling import Scaling

__all__ = ["FAMILIES", "HOURS_PER_YEAR", "PARAMETERS", "VARIABLES", "Commitments", "ModelInfo", "Scaling",
           "build_model", "row_label", "split_index", "structure_key", "update_model"]
