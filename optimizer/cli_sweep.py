"""``capplan sweep`` and ``capplan marginal`` (registered on the main app)."""

from __future__ import annotations
