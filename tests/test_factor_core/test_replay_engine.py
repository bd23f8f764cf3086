"""The event-driven engine: the documented fill model, accounting, timers, inventory limits, side-by-side strategies,
and identical results from the WebSocket stream and from the files."""

import asyncio
import json

import numpy as np
import pandas as pd
import pytest

from factor_core.partition_store import PartitionStore
from factor_core.replay import ReplayCatalog, ReplayServer, parse_options
from factor_core.replay.engine import (
    BookSnapshot, Engine, OrderError, Strategy, StrategyConfigError, StrategySpec, Trade, equity_frame, fills_frame,
    load_strategy_config, max_drawdown, server_events, stored_events, summary_frame,
)
from factor_core.replay.engine.config import DEFAULT_FILE
from factor_core.replay.engine.examples import BookImbalanceTaker
from tests.test_factor_core.replay_data import write_simulated

S = "BTCUSDT"
HERE = "tests.test_factor_core.test_replay_engine"
T0 = 1_704_153_600_000_000  # 2024-01-02 00:00 UTC, microseconds


def book(ts, bids, asks, symbol=S):
    return BookSnapshot(ts, symbol, "book_snapshot_10_0ms", tuple(bids), tuple(asks))


def trade(ts, price, amount=1.0, side="sell", symbol=S, trade_id="1"):
    return Trade(ts, symbol, trade_id, price, amount, side)


class Scripted(Strategy):
    """Runs ``script[i](ctx, event)`` on the i-th event it receives and logs what it saw."""

    script: dict = {}
    defaults = {}

    def __init__(self, name="", **params):
        super().__init__(name, **params)
        self.seen = []

    def _step(self, ctx, event):
        self.seen.append((ctx.now_us, type(event).__name__, event.ts_us))
        action = type(self).script.get(len(self.seen) - 1)
        if action:
            action(ctx, event)

    on_trade = on_book = on_timer = _step


def scripted(script: dict, **spec):
    cls = type("ScriptedRun", (Scripted,), {"script": script})
    globals()["ScriptedRun"] = cls  # importable by kind name
    fields = {"taker_fee_bps": 10.0, "maker_fee_bps": 2.0, "max_position_usd": None, **spec}
    return StrategySpec(spec.pop("name", "s"), f"{HERE}:ScriptedRun", (S,), **{k: v for k, v in fields.items() if k != "name"})


def run(specs, events, *, end=T0 + 3_600_000_000, interval=60_000_000):
    engine = Engine(specs if isinstance(specs, list) else [specs], start_us=T0, end_us=end, equity_interval_us=interval)
    return engine, engine.run(events)


BOOK = book(T0, [(99.0, 1.0), (98.0, 2.0), (97.0, 5.0)], [(101.0, 1.0), (102.0, 2.0), (103.0, 5.0)])


def test_a_market_buy_walks_the_book_level_by_level_and_pays_the_taker_fee():
    spec = scripted({0: lambda ctx, e: ctx.buy(S, 2.5)})
    _, (result,) = run(spec, [BOOK])
    assert [(f.price, f.qty, f.liquidity) for f in result.fills] == [(101.0, 1.0, "taker"), (102.0, 1.5, "taker")]
    assert [f.fee_usd for f in result.fills] == pytest.approx([101.0 * 10e-4, 153.0 * 10e-4])
    assert result.orders[0].status == "filled"
    assert result.summary["turnover_usd"] == pytest.approx(101.0 + 153.0)


def test_a_market_order_larger_than_the_book_fills_what_is_shown_and_cancels_the_rest():
    spec = scripted({0: lambda ctx, e: ctx.sell(S, 10.0)})
    _, (result,) = run(spec, [BOOK])
    assert sum(f.qty for f in result.fills) == 8.0 and [f.price for f in result.fills] == [99.0, 98.0, 97.0]
    order = result.orders[0]
    assert (order.status, order.filled_qty) == ("cancelled", 8.0) and "immediate or cancel" in order.reason


def test_own_fills_consume_the_snapshot_until_the_next_one():
    spec = scripted({0: lambda ctx, e: ctx.buy(S, 1.0), 1: lambda ctx, e: ctx.buy(S, 1.0), 2: lambda ctx, e: ctx.buy(S, 1.0)})
    _, (result,) = run(spec, [BOOK, trade(T0 + 1, 100.0), book(T0 + 2, BOOK.bids, BOOK.asks)])
    assert [f.price for f in result.fills] == [101.0, 102.0, 101.0]  # the second meets what the first left


def test_a_resting_limit_fills_only_on_a_trade_through_its_price_at_the_limit_with_the_maker_fee():
    spec = scripted({0: lambda ctx, e: ctx.buy(S, 3.0, limit=100.0)})
    events = [BOOK, trade(T0 + 1, 100.0, 5.0), trade(T0 + 2, 99.5, 2.0), trade(T0 + 3, 99.9, 4.0)]
    _, (result,) = run(spec, events)
    assert [(f.ts_us, f.qty, f.price, f.liquidity) for f in result.fills] == [
        (T0 + 2, 2.0, 100.0, "maker"), (T0 + 3, 1.0, 100.0, "maker")]  # not at 100.0 itself; at most each trade's size
    assert result.fills[0].fee_usd == pytest.approx(200.0 * 2e-4)
    assert result.orders[0].status == "filled"


def test_resting_orders_share_a_trade_by_price_then_time_priority():
    def place(ctx, e):
        ctx.buy(S, 1.0, limit=99.5)
        ctx.buy(S, 1.0, limit=100.0)
        ctx.buy(S, 1.0, limit=100.0)

    spec = scripted({0: place})
    _, (result,) = run(spec, [BOOK, trade(T0 + 1, 99.0, 2.5)])
    assert [(f.order_id, f.qty) for f in result.fills] == [(2, 1.0), (3, 1.0), (1, 0.5)]


def test_a_marketable_limit_takes_the_book_down_to_its_price_then_rests():
    spec = scripted({0: lambda ctx, e: ctx.buy(S, 4.0, limit=102.0)})
    _, (result,) = run(spec, [BOOK, trade(T0 + 1, 101.5, 10.0)])
    assert [(f.price, f.qty, f.liquidity) for f in result.fills] == [
        (101.0, 1.0, "taker"), (102.0, 2.0, "taker"), (102.0, 1.0, "maker")]


def test_an_order_that_could_breach_the_inventory_limit_is_rejected_and_reducing_orders_are_not():
    def act(ctx, e):
        ctx.buy(S, 1.0, limit=90.0)  # 90 USD open
        ctx.buy(S, 1.0)  # fills at 101: position 1 (+1 open) = 202 USD worst case
        over = ctx.buy(S, 1.0, limit=95.0)  # would make 3 x 95 = 285 > 250
        assert over.status == "rejected" and "max_position_usd" in over.reason
        assert ctx.sell(S, 0.5).status == "filled"  # reduces the position

    spec = scripted({0: act}, max_position_usd=250.0)
    _, (result,) = run(spec, [BOOK])
    assert result.summary["rejected_orders"] == 1 and result.summary["orders"] == 4


def test_an_order_for_a_symbol_the_strategy_does_not_trade_is_an_error_naming_both():
    spec = scripted({0: lambda ctx, e: ctx.buy("ETHUSDT", 1.0)}, name="only_btc")
    with pytest.raises(OrderError, match=r"strategy 'only_btc' .*'ETHUSDT' is not one of the symbols it trades \['BTCUSDT'\]"):
        run(spec, [BOOK])


@pytest.mark.parametrize("qty, limit, words", [(0.0, None, "quantity 0.0"), (-1.0, None, "quantity -1.0"),
                                               (float("nan"), None, "quantity nan"), (1.0, -5.0, "limit price -5.0")])
def test_bad_quantities_and_prices_are_refused(qty, limit, words):
    spec = scripted({0: lambda ctx, e: ctx.buy(S, qty, limit=limit)})
    with pytest.raises(OrderError, match=words):
        run(spec, [BOOK])


def test_pnl_is_cash_flows_plus_the_marked_position_minus_fees():
    rng = np.random.default_rng(11)
    sides = rng.choice(["buy", "sell"], 60)
    sizes = np.round(rng.uniform(0.1, 1.5, 60), 3)

    def act_on(i):
        return lambda ctx, e: (ctx.buy if sides[i] == "buy" else ctx.sell)(S, float(sizes[i]))

    events, script = [], {}
    for i in range(60):
        mid = 100.0 + float(np.sin(i / 5.0)) * 3
        events.append(book(T0 + 10 * i, [(mid - 0.5, 50.0)], [(mid + 0.5, 50.0)]))
        events.append(trade(T0 + 10 * i + 5, mid + 0.1))
        script[2 * i] = act_on(i)
    _, (result,) = run(scripted(script), events)
    fills = fills_frame([result])
    signed = np.where(fills.side == "buy", fills.qty, -fills.qty)
    position = signed.sum()
    mark = events[-1].price
    expected_pnl = -(signed * fills.price).sum() + position * mark - fills.fee_usd.sum()
    s = result.summary
    assert s["pnl_usd"] == pytest.approx(expected_pnl, rel=1e-12, abs=1e-9)
    assert s["pnl_usd"] == pytest.approx(s["realized_pnl_usd"] + s["unrealized_pnl_usd"] - s["fees_usd"], abs=1e-9)
    assert s["fees_usd"] == pytest.approx((fills.qty * fills.price).sum() * 10e-4)
    assert fills.position_after.iloc[-1] == pytest.approx(position)


def test_a_round_trip_realizes_its_price_difference_and_leaves_nothing_unrealized():
    spec = scripted({0: lambda ctx, e: ctx.buy(S, 2.0), 2: lambda ctx, e: ctx.sell(S, 2.0)}, taker_fee_bps=0.0)
    events = [book(T0, [(99.0, 5.0)], [(101.0, 5.0)]), trade(T0 + 1, 100.0), book(T0 + 2, [(105.0, 5.0)], [(106.0, 5.0)])]
    _, (result,) = run(spec, events)
    assert result.summary["realized_pnl_usd"] == pytest.approx(2 * (105.0 - 101.0))
    assert result.summary["unrealized_pnl_usd"] == 0.0


def test_timers_fire_after_the_events_of_their_time_and_before_later_ones():
    spec = scripted({0: lambda ctx, e: ctx.schedule(every_us=10, name="tick")})
    events = [book(T0, BOOK.bids, BOOK.asks), trade(T0 + 10, 100.0), trade(T0 + 25, 100.0)]
    engine, _ = run(spec, events, end=T0 + 40)
    seen = engine.contexts[0].strategy.seen
    assert seen == [(T0, "BookSnapshot", T0), (T0 + 10, "Trade", T0 + 10), (T0 + 10, "Timer", T0 + 10),
                    (T0 + 20, "Timer", T0 + 20), (T0 + 25, "Trade", T0 + 25), (T0 + 30, "Timer", T0 + 30)]


def test_a_strategy_sees_only_its_symbols_and_the_book_of_now():
    looked = []
    spec = scripted({1: lambda ctx, e: looked.append(ctx.book(S).ts_us)})
    eth = book(T0 + 1, [(9.0, 1.0)], [(10.0, 1.0)], symbol="ETHUSDT")
    engine, _ = run(spec, [BOOK, eth, trade(T0 + 2, 100.0), book(T0 + 3, BOOK.bids, BOOK.asks)])
    assert [kind for _, kind, _ in engine.contexts[0].strategy.seen] == ["BookSnapshot", "Trade", "BookSnapshot"]
    assert looked == [T0]


def test_strategies_side_by_side_do_not_affect_each_other(tmp_path):
    store = PartitionStore(tmp_path)
    write_simulated(store, [S], ["2024-01-02"], trades_per_minute=8)
    request = parse_options(json.dumps({"symbols": [S], "from": "2024-01-02T09:00:00Z", "to": "2024-01-02T13:00:00Z",
                                        "dataTypes": ["trade", "book_snapshot_10_0ms"]}))
    specs = [s.with_symbols((S,)) for s in load_strategy_config().strategies]

    def results(chosen):
        engine = Engine(chosen, start_us=request.start_ns // 1000, end_us=request.end_ns // 1000)
        return engine.run(stored_events(ReplayCatalog(store), request))

    together = results(specs)
    for i, spec in enumerate(specs):
        alone = results([spec])
        pd.testing.assert_frame_equal(fills_frame(alone), fills_frame(together[i : i + 1]))
        pd.testing.assert_frame_equal(summary_frame(alone), summary_frame(together[i : i + 1]))
    assert all(r.summary["fills"] > 0 for r in together)


def test_the_equity_curve_is_sampled_per_interval_and_its_drawdown_is_the_deepest_fall_from_a_peak():
    script = {0: lambda ctx, e: ctx.buy(S, 1.0)}
    prices = [100.0, 104.0, 97.0, 103.0, 95.0, 99.0]
    events = [BOOK] + [trade(T0 + 60_000_000 * i + 1, p) for i, p in enumerate(prices)]
    _, (result,) = run(scripted(script, taker_fee_bps=0.0), events, end=T0 + 6 * 60_000_000)
    curve = equity_frame([result])
    assert curve.ts.diff().dropna().eq(pd.Timedelta(minutes=1)).all() and len(curve) == 7
    equity = curve.equity_usd.to_numpy()
    expected = (pd.Series(equity).cummax() - equity).max()
    assert result.summary["max_drawdown_usd"] == pytest.approx(expected)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == (0.0, 0.0)


def test_fill_ratio_is_filled_over_ordered_quantity_not_counting_rejected_orders():
    def act(ctx, e):
        ctx.buy(S, 1.0, limit=90.0)  # never fills
        ctx.buy(S, 1.0, limit=101.0)  # fills at once
        ctx.buy(S, 50.0, limit=80.0)  # rejected: 80 x 52 > limit

    _, (result,) = run(scripted({0: act}, max_position_usd=1000.0), [BOOK])
    assert result.summary["rejected_orders"] == 1
    assert result.summary["fill_ratio"] == pytest.approx(101.0 / (90.0 + 101.0))


def test_an_event_stream_out_of_time_order_is_refused():
    with pytest.raises(ValueError, match="not in time order"):
        run(scripted({}), [book(T0 + 5, BOOK.bids, BOOK.asks), trade(T0 + 1, 100.0)])


def test_the_engine_gives_identical_results_from_the_websocket_stream_and_from_the_files(tmp_path):
    store = PartitionStore(tmp_path)
    symbols = ["BTCUSDT", "ETHUSDT"]
    write_simulated(store, symbols, ["2024-01-02"], trades_per_minute=10)
    config = load_strategy_config()
    options = {"symbols": symbols, "from": "2024-01-02T10:00:00Z", "to": "2024-01-02T14:00:00Z",
               "dataTypes": list(config.data_types)}
    request = parse_options(json.dumps(options))
    specs = [s.with_symbols(tuple(symbols)) for s in config.strategies]

    def engine():
        return Engine(specs, start_us=request.start_ns // 1000, end_us=request.end_ns // 1000)

    from_files = engine().run(stored_events(ReplayCatalog(store), request))

    async def over_the_wire():
        server = ReplayServer(ReplayCatalog(store))
        port, = await server.start("127.0.0.1", (0,))
        try:
            base = f"http://127.0.0.1:{port}"
            return (await engine().run_async(server_events(base, options)),
                    await engine().run_async(server_events(base, options, websocket=False)))
        finally:
            await server.stop()

    from_websocket, from_http = asyncio.run(over_the_wire())
    for other in (from_websocket, from_http):
        pd.testing.assert_frame_equal(fills_frame(other), fills_frame(from_files))
        pd.testing.assert_frame_equal(equity_frame(other), equity_frame(from_files))
        pd.testing.assert_frame_equal(summary_frame(other), summary_frame(from_files))
    assert len(fills_frame(from_files)) > 10


def test_book_imbalance_is_bid_minus_ask_size_over_their_sum_on_the_top_levels():
    snapshot = book(T0, [(99.0, 3.0), (98.0, 1.0), (97.0, 100.0)], [(101.0, 1.0), (102.0, 1.0)])
    assert BookImbalanceTaker.imbalance(snapshot, 2) == pytest.approx((4.0 - 2.0) / 6.0)


def test_the_shipped_strategies_file_loads_both_examples():
    config = load_strategy_config(DEFAULT_FILE)
    assert {s.kind for s in config.strategies} == {"book_imbalance_taker", "simple_market_maker"}
    assert config.data_types == ("trade", f"book_snapshot_{config.book_levels}_0ms")


@pytest.mark.parametrize("entry, words", [
    ({"name": "x", "kind": "nope"}, "strategy 'x': unknown kind 'nope'"),
    ({"name": "x", "kind": "book_imbalance_taker", "params": {"levls": 3}}, "unknown parameter(s) ['levls']"),
    ({"name": "x", "kind": "book_imbalance_taker", "params": {"levels": "five"}}, "parameter 'levels' = 'five'"),
    ({"name": "x", "kind": "book_imbalance_taker", "fee_bps": 3}, "unknown field(s) ['fee_bps']"),
    ({"name": "x", "kind": "book_imbalance_taker", "symbols": ["btc-usdt"]}, "invalid symbol 'btc-usdt'"),
    ({"name": "x", "kind": "book_imbalance_taker", "max_position_usd": -1}, "max_position_usd must be > 0"),
    ({"kind": "book_imbalance_taker"}, "every strategy needs a name"),
])
def test_a_bad_strategy_entry_is_reported_with_file_strategy_and_field(tmp_path, entry, words):
    path = tmp_path / "tick.yaml"
    path.write_text(json.dumps({"strategies": [entry]}))
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy_config(path)
    assert str(path) in str(caught.value) and words in str(caught.value)
