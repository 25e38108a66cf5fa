"""Analyses above the solve: each re-solves instances (sweeps, marginal values, explanations)."""
