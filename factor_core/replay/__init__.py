"""Tick replay: stored ``raw_trades`` / ``raw_book`` partitions streamed as tardis-machine normalized messages.

* :mod:`.options`: the ``options`` of ``/replay-normalized`` parsed and checked;
* :mod:`.catalog`: registered symbols and stored partitions, checked before a stream starts;
* :mod:`.blocks`: Parquet read batch by batch into columnar blocks, checked on the way;
* :mod:`.merge`: the sources merged in strict time order (the tie rule is documented there);
* :mod:`.encode` / :mod:`.text_kernels`: the JSON messages, framed for HTTP or WebSocket;
* :mod:`.server`: the aiohttp server (``factor-pipeline replay serve``);
* :mod:`.client`: a small client; :mod:`.engine`: the event-driven strategy engine.

Nothing here imports Dagster. docs/replay.md is the user's guide.
"""

from factor_core.replay.catalog import DEFAULT_EXCHANGE, ReplayCatalog, ReplayPlan, stored_symbols
from factor_core.replay.errors import ReplayError, ReplayNotFoundError, ReplayOptionsError, StoredDataError
from factor_core.replay.options import DataType, ReplayRequest, parse_options, parse_data_type
from factor_core.replay.server import ReplayServer, SessionInfo, serve_forever

__all__ = [
    "DEFAULT_EXCHANGE", "DataType", "ReplayCatalog", "ReplayError", "ReplayNotFoundError", "ReplayOptionsError",
    "ReplayPlan", "ReplayRequest", "ReplayServer", "SessionInfo", "StoredDataError", "parse_data_type",
    "parse_options", "serve_forever", "stored_symbols",
]
