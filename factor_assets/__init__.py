"""factor-pipeline's Dagster code location (``dagster ... -m factor_assets``)."""

from factor_assets.definitions import defs

__all__ = ["defs"]
