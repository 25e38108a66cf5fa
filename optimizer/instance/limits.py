"""Limits that protect the machine from absurd inputs (documented in docs/model.md)."""

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_HORIZON_YEARS = 100
MAX_REGIONS = 200
MAX_CHIPS = 100
MAX_YAML_NODES = 500_000  # values in the YAML document, aliases expanded (the largest instance the
#                            other limits allow, every series listed year by year, has ~290,000)
YEAR_RANGE = (1900, 2200)
MAX_MAGNITUDE = 1e16  # no input number (resolved series included) may exceed this in absolute value:
#                        far above any real quantity (the default budget is 1e11 USD), low enough that
#                        products of two inputs (price x chips per unit, ...) stay finite in floating point
MIN_MAGNITUDE = 1e-12  # nor may a nonzero one be smaller: its products would underflow towards zero
MAX_STAGES = 6  # uncertainty (spec v2 section 4.1): stages, branches per stage, scenarios in all
MAX_BRANCHES = 10
MAX_SCENARIOS = 1000
