"""The mathematics of capplan: the Pyomo model of spec model-v1, section 2."""

from .model import HOURS_PER_YEAR, ModelInfo, build_model
from .scaling import Scaling

__all__ = ["HOURS_PER_YEAR", "ModelInfo", "Scaling", "build_model"]
