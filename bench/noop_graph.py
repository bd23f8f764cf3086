"""Dagster's own floor for bench_backfill.py: the real graph, derived from ``factor_assets.defs``, with steps that do nothing.

Every node (``@asset`` / ``@multi_asset``) of the real Definitions becomes a
``@multi_asset`` with the same op name (so the same step keys), asset keys,
output names, ``partitions_def``, inputs with their partition mappings and
metadata, internal dependencies, group names, ``is_required`` (subsettable
outputs), ``can_subset``, backfill policy, pool, asset-check specs, required
resources (the real resource objects, which only hold configuration) and run
config schema, and the same executor (the real one's resolved configuration,
with this module as the fork server's preload instead of ``factor_assets``).

A body only yields ``Output(None)`` for each selected asset and a passing
``AssetCheckResult`` for each selected check. The IO managers (bound to the
real keys ``parquet_io_manager`` and ``warehouse_io_manager``) read the
partition keys Dagster maps to each output and input (as the real ones do
before touching files) and store or load nothing. So materializing this graph
over the same keys costs what Dagster costs: run and step start-up, planning,
partition mapping, resource and config resolution, and one event per
partition of every asset and check.

:func:`mismatches` compares this graph with the real one field by field; the
benchmark refuses to run (c) unless it returns nothing.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetCheckResult,
    AssetIn,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    ConfigurableIOManager,
    Definitions,
    Output,
    PreviewWarning,
    multi_asset,
)

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from factor_assets import definitions as real  # noqa: E402

MODULE = "bench.noop_graph"
IO_MANAGER_KEYS = ("parquet_io_manager", "warehouse_io_manager")


class NoopIOManager(ConfigurableIOManager):
    """Reads the partition keys Dagster mapped to the output / input, stores and loads nothing."""

    def handle_output(self, context, obj) -> None:
        if context.has_asset_partitions:
            context.asset_partition_keys  # noqa: B018 (what the real IO manager asks Dagster for)

    def load_input(self, context):
        if context.has_asset_partitions:
            context.asset_partition_keys  # noqa: B018
        return None


def real_nodes(defs: Definitions = real.defs) -> list[AssetsDefinition]:
    """The materializable nodes of ``defs``, one per op, in a stable order."""
    by_op: dict[str, AssetsDefinition] = {}
    for assets_def in defs.get_repository_def().assets_defs_by_key.values():
        if assets_def.is_materializable:
            by_op.setdefault(assets_def.node_def.name, assets_def)
    return [by_op[name] for name in sorted(by_op)]


def _noop_body(output_names: dict) -> callable:
    """Yield the minimum: one ``Output(None)`` per selected asset, one passing result per selected check."""

    def body(context, **_inputs):
        for key in sorted(context.selected_asset_keys, key=lambda k: output_names[k]):
            yield Output(None, output_name=output_names[key])
        for check in sorted(context.selected_asset_check_keys, key=str):
            yield AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    return body


def _outs(node: AssetsDefinition) -> dict[str, AssetOut]:
    op = node.node_def
    outs = {}
    for key in node.keys:
        name = node.get_output_name_for_asset_key(key)
        spec = node.specs_by_key[key].replace_attributes(deps=[])  # dependencies come from ins / internal deps
        out = op.output_def_named(name)
        outs[name] = AssetOut.from_spec(spec, is_required=out.is_required, io_manager_key=out.io_manager_key)
    return outs


def _ins(node: AssetsDefinition) -> dict[str, AssetIn]:
    op = node.node_def
    ins = {}
    for name, key in node.keys_by_input_name.items():
        input_def = op.input_def_named(name)
        ins[name] = AssetIn(
            key=key,
            partition_mapping=node.get_partition_mapping(key) if node.partitions_def is not None else None,
            metadata=dict(input_def.metadata or {}),
            input_manager_key=input_def.input_manager_key,
        )
    return ins


def _config_fields(op) -> dict | None:
    """The op's run config fields (e.g. the strategies override), so Dagster resolves the same config."""
    fields = getattr(op.config_schema.as_field().config_type, "fields", None)
    return dict(fields) if fields else None


def noop_node(node: AssetsDefinition) -> AssetsDefinition:
    """``node`` with the same shape and a body that does nothing."""
    op = node.node_def
    output_names = {key: node.get_output_name_for_asset_key(key) for key in node.keys}
    internal = None
    if len(node.keys) > 1:  # which inputs each output depends on (e.g. factor_report <- factor_ic only)
        internal = {output_names[key]: {dep.asset_key for dep in node.specs_by_key[key].deps} for key in node.keys}
    resources = {k for k in op.required_resource_keys if k not in IO_MANAGER_KEYS}
    return multi_asset(
        name=op.name,
        outs=_outs(node),
        ins=_ins(node),
        internal_asset_deps=internal,
        partitions_def=node.partitions_def,
        backfill_policy=node.backfill_policy,
        can_subset=node.can_subset,
        check_specs=list(node.check_specs) or None,
        required_resource_keys=resources,
        config_schema=_config_fields(op),
        op_tags=dict(op.tags) or None,
        retry_policy=op.retry_policy,
        pool=op.pool,
    )(_noop_body(output_names))


def noop_executor(defs: Definitions = real.defs):
    """The real executor (its resolved configuration), its fork server preloading this module instead."""
    executor = defs.executor
    schema = getattr(executor, "_config_schema", None)
    parent = getattr(schema, "parent_def", None)
    if parent is None or parent.name != "multiprocess":
        raise RuntimeError(f"noop_graph mirrors the configured multiprocess executor only; the real executor is "
                           f"{executor.name!r} (FACTOR_EXECUTOR={real.settings.get('FACTOR_EXECUTOR')})")
    config = schema.resolve_config({}).value["config"]
    preload = config.get("start_method", {}).get("forkserver", {}).get("preload_modules")
    if preload is not None:
        config["start_method"]["forkserver"]["preload_modules"] = [MODULE if m == "factor_assets" else m for m in preload]
    return parent.configured(config, name=executor.name)


def build_defs(defs: Definitions = real.defs) -> Definitions:
    resources = {k: v for k, v in real.RESOURCES.items() if k not in IO_MANAGER_KEYS}
    return Definitions(
        assets=[noop_node(node) for node in real_nodes(defs)],
        resources={**resources, **{k: NoopIOManager() for k in IO_MANAGER_KEYS}},
        executor=noop_executor(defs),
    )


defs = build_defs()


# --------------------------------------------------------------------------- self-check


def shape(defs: Definitions) -> dict:
    """Everything the floor must share with the real graph, per op: comparable with ``==``."""
    out = {}
    for node in real_nodes(defs):
        op = node.node_def
        out[op.name] = {
            "keys": sorted(k.to_user_string() for k in node.keys),
            "checks": sorted(str(c) for c in node.check_keys),
            "partitions_def": repr(node.partitions_def),
            "backfill_policy": repr(node.backfill_policy),
            "can_subset": node.can_subset,
            "pool": op.pool,
            "resources": sorted(k for k in op.required_resource_keys if k not in IO_MANAGER_KEYS),
            "config": sorted(_config_fields(op) or {}),
            "inputs": {name: (key.to_user_string(), repr(node.get_partition_mapping(key) if node.partitions_def else None),
                              dict(op.input_def_named(name).metadata or {}), op.input_def_named(name).input_manager_key)
                       for name, key in sorted(node.keys_by_input_name.items())},
            "deps": {k.to_user_string(): sorted((d.asset_key.to_user_string(), repr(d.partition_mapping))
                                                for d in node.specs_by_key[k].deps) for k in node.keys},
            "outputs": {name: (out.io_manager_key, out.is_required) for name, out in sorted(op.output_dict.items())},
            "groups": {k.to_user_string(): node.specs_by_key[k].group_name for k in node.keys},
        }
    return out


def mismatches(noop: Definitions = defs, actual: Definitions = real.defs) -> list[str]:
    """Every difference between the no-op graph and the real one (empty when they mirror each other)."""
    mine, theirs = shape(noop), shape(actual)
    problems = [f"op {name}: only in the {'no-op' if name in mine else 'real'} graph"
                for name in sorted(set(mine) ^ set(theirs))]
    for name in sorted(set(mine) & set(theirs)):
        for field, value in theirs[name].items():
            if mine[name][field] != value:
                problems.append(f"op {name}: {field} differs: no-op {mine[name][field]!r} vs real {value!r}")
    keys = lambda d: {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}  # noqa: E731
    if keys(noop) != keys(actual):
        problems.append(f"asset keys differ: no-op only {sorted(keys(noop) - keys(actual))}, "
                        f"real only {sorted(keys(actual) - keys(noop))}")
    if noop.executor.name != actual.executor.name:
        problems.append(f"executor differs: {noop.executor.name} vs {actual.executor.name}")
    return problems
