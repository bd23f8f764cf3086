"""factor-pipeline's Dagster code location (``dagster ... -m factor_assets``)."""

import warnings

from dagster import BetaWarning, PreviewWarning

# Single-run backfill policies and multi-partition mappings are marked beta;
# the project depends on them deliberately (see docs/operations.md), so their
# warnings would only bury each CLI run's useful output.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from factor_assets.definitions import defs  # noqa: E402

__all__ = ["defs"]
