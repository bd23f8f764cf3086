"""(b) of bench_backfill.py: every asset's own function called as plain Python, stage by stage.

See bench_backfill.py's docstring for what is compared; this module holds the plain-Python driver and the
few helpers both ways of running the pipeline share (symbols, days, environment, partition ranges).
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import os
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace


def symbols(n: int) -> list[str]:
    return [f"B{i:03d}USDT" for i in range(n)]


def last_day(first: dt.date, days: int) -> dt.date:
    return first + dt.timedelta(days=days - 1)


def pipeline_env(data: Path, names: list[str]) -> dict[str, str]:
    """What every way of running the pipeline gets on top of the user's environment."""
    return {"FACTOR_DATA_ROOT": str(data), "DEMO_SYMBOLS": ",".join(names), "MARKET_DATA_SOURCE": "synthetic"}


def partition_ranges(names: list[str], first: dt.date, last: dt.date) -> dict[str, str]:
    """The ``--partition-range`` of each kind of stage, as ``factor-pipeline backfill`` builds it."""
    from partitions import partition_ranges as ranges  # imported late: the code location reads the environment

    return ranges(first, last, names)


# --------------------------------------------------------------------------- (b): plain Python


class PlainContext:
    """The few context attributes the asset bodies read; metadata and log lines are dropped."""

    log = logging.getLogger("bench_backfill.plain")
    log.addHandler(logging.NullHandler())
    log.propagate = False

    def __init__(self, node, partition_keys, selected, instance, tags):
        self.assets_def, self.partition_keys, self.selected_asset_keys = node, partition_keys, selected
        self.instance = instance
        self.run = SimpleNamespace(tags=tags)

    def add_asset_metadata(self, metadata, asset_key=None, partition_key=None) -> None:
        pass

    def add_output_metadata(self, metadata, output_name=None) -> None:
        pass


class PlainPipeline:
    """(b): the graph's nodes called as plain Python in this process, over one data root (module docstring)."""

    def __init__(self, data: Path, names: list[str]):
        os.environ.update({**pipeline_env(data, names), "FACTOR_STEP_WORKERS": "1"})
        from dagster import DagsterInstance

        from factor_assets.definitions import build_resources, defs
        from factor_core import settings
        from partitions import SYMBOLS_PARTITION_NAME

        self.names, self.data = names, data
        self.resources = build_resources(settings.get("MARKET_DATA_SOURCE"))
        self.graph = defs.resolve_asset_graph()
        self.nodes = defs.get_repository_def().assets_defs_by_key
        self.instance = DagsterInstance.ephemeral()  # the registered symbols, in registration order
        self.instance.add_dynamic_partitions(SYMBOLS_PARTITION_NAME, names)

    def run_plan(self, plan, first: dt.date, last: dt.date) -> list[dict[str, float]]:
        """Every stage; per stage ``{op name: seconds}``."""
        return [self.run_stage(kind, keys, first, last) for kind, keys in plan]

    def run_stage(self, kind: str, keys: list[str], first: dt.date, last: dt.date) -> dict[str, float]:
        from dagster import PartitionKeyRange

        ranges = partition_ranges(self.names, first, last)
        key_range = PartitionKeyRange(*ranges[kind].split("...")) if kind in ranges else None
        return {node.node_def.name: self.run_node(node, selected, key_range)
                for node, selected in self.nodes_in_order(keys)}

    def nodes_in_order(self, keys: list[str]):
        """The stage's nodes with their selected keys, upstream first (the order the steps could run in)."""
        from dagster import AssetKey

        wanted = {AssetKey.from_user_string(k) for k in keys}
        by_op: dict[str, tuple] = {}
        for key in sorted(wanted):
            node = self.nodes[key]
            by_op.setdefault(node.node_def.name, (node, set()))[1].add(key)
        ordered, done = [], set()
        while by_op:
            ready = [op for op, (_, selected) in by_op.items()
                     if all(p in done or p not in wanted or p in selected for k in selected for p in self.graph.get(k).parent_keys)]
            if not ready:
                raise RuntimeError(f"no node of {sorted(by_op)} is ready: a cycle?")
            for op in sorted(ready):
                node, selected = by_op.pop(op)
                ordered.append((node, selected))
                done |= selected
        return ordered

    def run_node(self, node, selected, key_range) -> float:
        """One node as its step would run it; seconds from calling its function to its last output stored."""
        from dagster import Output, partition_loading_context

        from factor_assets.partition_keys import RANGE_END_TAG, RANGE_START_TAG

        partitions_def = node.partitions_def
        with partition_loading_context(dynamic_partitions_store=self.instance):
            subset = (partitions_def.empty_subset().with_partition_key_range(partitions_def, key_range)
                      if partitions_def is not None else None)
            partition_keys = partitions_def.get_partition_keys_in_range(key_range) if partitions_def is not None else []
            inputs = {name: self.load_input(node, name, upstream, subset)
                      for name, upstream in node.keys_by_input_name.items()}
            output_keys = list(subset.get_partition_keys()) if subset is not None else []
        tags = {RANGE_START_TAG: key_range.start, RANGE_END_TAG: key_range.end} if key_range else {}
        context = PlainContext(node, partition_keys, selected, self.instance, tags)
        fn = node.node_def.compute_fn.decorated_fn
        kwargs = self.arguments(fn, node, context, inputs)
        started = time.perf_counter()
        result = fn(**kwargs)
        if not inspect.isgenerator(result):
            result = [Output(result, output_name=node.get_output_name_for_asset_key(node.key))]
        for item in result:  # asset check results are computed by the body and dropped here
            if isinstance(item, Output):
                self.handle_output(node, item, output_keys)
        return time.perf_counter() - started

    def arguments(self, fn, node, context, inputs: dict) -> dict:
        """The body's arguments as Dagster passes them: context, config (its defaults), resources, inputs."""
        parameters = inspect.signature(fn).parameters
        hints = typing.get_type_hints(fn) if "config" in parameters else {}
        kwargs, rest = {}, dict(inputs)
        for name, param in parameters.items():
            if name == "context":
                kwargs[name] = context
            elif name == "config":
                kwargs[name] = hints[name]()  # a launch without run config: every field's default
            elif name in node.node_def.required_resource_keys:
                kwargs[name] = self.resources[name]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            else:
                kwargs[name] = rest.pop(name)
        return {**kwargs, **rest}

    def load_input(self, node, name: str, upstream, subset):
        """What the input's IO manager hands the body, over the upstream partitions Dagster maps to the run."""
        from dagster._core.definitions.partitions.utils.mapping import infer_partition_mapping

        upstream_def = self.graph.get(upstream).partitions_def
        keys = None
        if upstream_def is not None:
            mapping = infer_partition_mapping(node.get_partition_mapping_for_dep(upstream), node.partitions_def, upstream_def)
            mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(subset, node.partitions_def, upstream_def)
            keys = list(mapped.partitions_subset.get_partition_keys())
        input_def = node.node_def.input_def_named(name)
        manager_key = input_def.input_manager_key or self.nodes[upstream].get_io_manager_key_for_asset_key(upstream)
        context = SimpleNamespace(upstream_output=SimpleNamespace(asset_key=upstream), asset_key=upstream,
                                  definition_metadata=input_def.metadata, has_asset_partitions=keys is not None,
                                  asset_partitions_def=upstream_def, asset_partition_keys=keys)
        return self.resources[manager_key].load_input(context)

    def handle_output(self, node, output, partition_keys: list) -> None:
        key = node.keys_by_output_name[output.output_name]
        manager = self.resources[node.node_def.output_def_named(output.output_name).io_manager_key]
        context = SimpleNamespace(asset_key=key, has_asset_partitions=node.partitions_def is not None,
                                  asset_partitions_def=node.partitions_def, asset_partition_keys=partition_keys,
                                  add_output_metadata=lambda *args, **kwargs: None)
        manager.handle_output(context, output.value)


@dataclass
class PlainResult:
    stages: list[dict[str, float]]  # per stage {op name: seconds}
    cpu_s: float
    warmup: list[dict[str, float]]  # the same, of the warm-up (first calls in this process)
    data: Path

    @property
    def total(self) -> float:
        return sum(sum(stage.values()) for stage in self.stages)

    @property
    def steps(self) -> dict[str, float]:
        return {op: t for stage in self.stages for op, t in stage.items()}

    @property
    def warmup_steps(self) -> dict[str, float]:
        return {op: t for stage in self.warmup for op, t in stage.items()}


def plain_python(root: Path, plan, names: list[str], first: dt.date, last: dt.date) -> PlainResult:
    """(b), after an untimed warm-up of the whole graph over 2 symbols x 2 days (another data root)."""
    from partitions import PARTITIONS_START_DATE

    warmup = PlainPipeline(root / "warmup_data", symbols(2)).run_plan(plan, PARTITIONS_START_DATE,
                                                                     last_day(PARTITIONS_START_DATE, 2))
    pipeline = PlainPipeline(root / "plain_data", names)
    cpu = time.process_time()
    stages = pipeline.run_plan(plan, first, last)
    return PlainResult(stages, time.process_time() - cpu, warmup, pipeline.data)
