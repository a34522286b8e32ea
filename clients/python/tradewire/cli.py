"""``python -m tradewire``: a small CLI over :class:`tradewire.Client`.

Exit codes: 0 ok, 1 the daemon answered with an error (printed to stderr),
2 usage error, 3 cannot connect to the daemon, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import __version__
from .client import Client
from .errors import NotConnected, RPCError, SubscriptionClosed, Timeout, TradewireError
from .events import EventsDropped

EXIT_OK = 0
EXIT_RPC = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3


class UsageError(Exception):
    pass


# ---------------------------------------------------------------- output
#
# The human output follows the Swift CLI (`tradewire`): numbers rounded (2 decimals for
# prices and confidences, 3 for latencies in ms, durations as `4.1 ms` / `1.91 s`), aligned
# tables and `key: value` lists. --json prints the raw result, compact, unchanged.


def _dump(obj: Any, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), flush=True)
    else:
        print(json.dumps(obj, indent=2, ensure_ascii=False), flush=True)


def _out(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt_cell(v: Any) -> str:
    """A scalar for a table cell: strings bare, booleans yes/no, null as ``-``, else compact JSON."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "yes" if v else "no"
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def fmt_fixed(v: Any, digits: int) -> str:
    """A number with ``digits`` decimals (``-`` when it is not a number)."""
    return f"{float(v):.{digits}f}" if _is_number(v) else "-"


def fmt_duration(seconds: Any) -> str:
    """``2.3 ms`` below a second, ``1.25 s`` above (``-`` when absent)."""
    if not _is_number(seconds):
        return "-"
    if seconds < 1:
        return fmt_fixed(seconds * 1000, 1) + " ms"
    return fmt_fixed(seconds, 2) + " s"


def fmt_time(timestamp: Any) -> str:
    """``14:38:21.555`` from an RFC 3339 timestamp (the whole text when it is not one)."""
    if not isinstance(timestamp, str):
        return "-"
    t = timestamp.find("T")
    if t < 0:
        return timestamp
    clock = timestamp[t + 1:]
    for i, ch in enumerate(clock):
        if ch in "Z+":
            clock = clock[:i]
            break
    return clock[:12]


def fmt_truncate(text: str, width: Optional[int]) -> str:
    """Cuts ``text`` to ``width`` characters, ending with ``…`` when cut."""
    if width is None or len(text) <= width or width <= 1:
        return text
    return text[: width - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Table:
    """A plain-text table: a header row, then the rows; columns two spaces apart,
    left or right aligned; no trailing spaces."""

    def __init__(self, headers: Sequence[str], right: Sequence[int] = ()) -> None:
        self.headers = list(headers)
        self.right = set(right)
        self.rows: List[List[str]] = []

    def append(self, row: Sequence[str]) -> None:
        self.rows.append(list(row))

    def render(self) -> List[str]:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row[: len(widths)]):
                widths[i] = max(widths[i], len(cell))
        lines = []
        for row in [self.headers] + self.rows:
            parts = []
            for i, w in enumerate(widths):
                cell = row[i] if i < len(row) else ""
                parts.append(cell.rjust(w) if i in self.right else cell.ljust(w))
            lines.append("  ".join(parts).rstrip())
        return lines


class KeyValues:
    """``key: value`` lines with the values aligned."""

    def __init__(self) -> None:
        self.entries: List[Tuple[str, str]] = []

    def append(self, key: str, value: str) -> None:
        self.entries.append((key, value))

    def render(self) -> List[str]:
        width = max((len(k) for k, _ in self.entries), default=0) + 1
        return [f"{k}:{' ' * (width - len(k) - 1)} {v}" for k, v in self.entries]


def render_status(r: Dict[str, Any]) -> List[str]:
    kv = KeyValues()
    kv.append("version", fmt_cell(r.get("version")))
    kv.append("api_level", fmt_cell(r.get("api_level")))
    kv.append("pid", fmt_cell(r.get("pid")))
    kv.append("socket", fmt_cell(r.get("socket")))
    kv.append("mode", fmt_cell(r.get("mode")))
    kv.append("uptime", fmt_duration(r.get("uptime_seconds")))
    loop = r.get("loop") if isinstance(r.get("loop"), dict) else {}
    kv.append("loop", "running" if loop.get("running") is True else "stopped")
    kv.append("loop interval", fmt_cell(loop.get("interval_seconds")) + " s")
    kv.append("loop iterations", fmt_cell(loop.get("iterations")))
    last = loop.get("last_iteration")
    if isinstance(last, dict):
        kv.append(
            "last iteration",
            f"#{fmt_cell(last.get('iteration'))} ({fmt_cell(last.get('iteration_id'))}) "
            f"at {fmt_cell(last.get('finished_at'))} in {fmt_duration(last.get('duration_seconds'))}: "
            f"{fmt_cell(last.get('signals'))} signals, {fmt_cell(last.get('approved'))} approved, "
            f"{fmt_cell(last.get('executed'))} executed, {fmt_cell(last.get('errors'))} errors",
        )
    else:
        kv.append("last iteration", "none")
    return kv.render()


STATS_COUNTERS = [
    "total_events_published", "events_published", "events_delivered", "events_dropped",
    "handler_errors", "total_event_types", "total_subscribers", "connections",
    "history_size", "history_capacity", "last_seq",
]


def render_stats(r: Dict[str, Any]) -> List[str]:
    counters = Table(["COUNTER", "VALUE"], right=[1])
    for key in STATS_COUNTERS:
        if key in r:
            counters.append([key, fmt_cell(r[key])])
    counters.append(["uptime", fmt_duration(r.get("uptime_seconds"))])
    pipeline = r.get("pipeline") if isinstance(r.get("pipeline"), dict) else {}
    for key in ("runs", "failures", "timeouts"):
        if key in pipeline:
            counters.append([f"pipeline {key}", fmt_cell(pipeline[key])])
    if pipeline.get("last_duration_seconds") is not None:
        counters.append(["pipeline last duration", fmt_duration(pipeline["last_duration_seconds"])])
    lines = counters.render()

    subs = r.get("event_types") if isinstance(r.get("event_types"), dict) else {}
    handlers = r.get("internal_handlers") if isinstance(r.get("internal_handlers"), dict) else {}
    types = Table(["EVENT TYPE", "SUBSCRIBERS", "HANDLERS"], right=[1, 2])
    for t in sorted(set(subs) | set(handlers)):
        types.append([t, fmt_cell(subs.get(t, 0)), fmt_cell(handlers.get(t, 0))])
    lines += [""] + types.render()

    published = Table(["PUBLISHED TYPE", "COUNT"], right=[1])
    by_type = r.get("published_by_type")
    for t, n in (by_type.items() if isinstance(by_type, dict) else ()):
        published.append([t, fmt_cell(n)])
    lines += [""] + published.render()

    stages = Table(["STAGE", "COUNT", "P50 MS", "P99 MS"], right=[1, 2, 3])
    st = pipeline.get("stages")
    for name, v in (st.items() if isinstance(st, dict) else ()):
        v = v if isinstance(v, dict) else {}
        stages.append([name, fmt_cell(v.get("count")), fmt_fixed(v.get("p50_ms"), 3), fmt_fixed(v.get("p99_ms"), 3)])
    lines += [""] + stages.render()
    return lines


def render_history(r: Dict[str, Any], wide: bool = False) -> List[str]:
    events = r.get("events") or []
    if not events:
        return ["no events"]
    table = Table(["SEQ", "TIME", "TYPE", "SUBS", "DATA"], right=[0, 3])
    for ev in events:
        table.append([
            fmt_cell(ev.get("seq")), fmt_time(ev.get("timestamp")), fmt_cell(ev.get("event_type")),
            fmt_cell(ev.get("subscriber_count")), fmt_truncate(_compact(ev.get("data")), None if wide else 60),
        ])
    return table.render()


def render_event_line(ev: Dict[str, Any], wide: bool = False) -> str:
    head = f"{fmt_cell(ev.get('seq'))} {fmt_time(ev.get('timestamp'))} {fmt_cell(ev.get('event_type'))}"
    return head + " " + fmt_truncate(_compact(ev.get("data")), None if wide else 60)


def render_publish(r: Dict[str, Any]) -> List[str]:
    n = r.get("subscribers") if isinstance(r.get("subscribers"), int) else 0
    line = f"published seq {fmt_cell(r.get('seq'))} ({fmt_cell(r.get('event_type'))}, {n} subscriber{'' if n == 1 else 's'})"
    if "iteration" in r:
        done = "completed" if r.get("completed") is True else "did not complete"
        line += f"; iteration {fmt_cell(r.get('iteration'))} ({fmt_cell(r.get('iteration_id'))}) {done}"
    return [line]


def _fill(x: Optional[Dict[str, Any]], dry_run: bool) -> str:
    """The fill price; ``~price`` for a dry run's estimate; ``failed`` when the order failed."""
    if x is None:
        return "-"
    price = x.get("fill_price")
    if x.get("executed") is True:
        return fmt_fixed(price, 2) if _is_number(price) else "filled"
    if x.get("error") is not None:
        return "failed"
    if dry_run and _is_number(price):
        return "~" + fmt_fixed(price, 2)
    return "-"


def signal_table(r: Dict[str, Any]) -> Table:
    """One row per signal (per symbol when it produced none), its final state merged from
    the validated, approved/rejected and execution lists."""

    def by_symbol(key: str) -> Dict[str, Dict[str, Any]]:
        out: Dict[str, Dict[str, Any]] = {}
        for item in r.get(key) or []:
            if not isinstance(item, dict):
                continue
            sig = item.get("signal") if isinstance(item.get("signal"), dict) else item
            if isinstance(sig.get("symbol"), str):
                out[sig["symbol"]] = item
        return out

    validated, approved = by_symbol("validated_signals"), by_symbol("approved_signals")
    rejected, executions = by_symbol("rejected_signals"), by_symbol("execution_results")
    dry_run = r.get("dry_run") is True
    table = Table(["SYMBOL", "ACTION", "STRATEGY", "CONF", "APPROVED", "QTY", "FILL", "REASON"], right=[3, 5, 6])
    covered = set()
    for sig in r.get("signals") or []:
        if not isinstance(sig, dict):
            continue
        symbol = sig.get("symbol") if isinstance(sig.get("symbol"), str) else "-"
        covered.add(symbol)
        final = approved.get(symbol) or rejected.get(symbol) or validated.get(symbol) or sig
        approval = "yes" if symbol in approved else "no" if symbol in rejected else "-"
        table.append([
            symbol, fmt_cell(sig.get("action")), fmt_cell(sig.get("strategy_name")),
            fmt_fixed(final.get("confidence"), 2), approval, fmt_cell(final.get("qty")),
            _fill(executions.get(symbol), dry_run), fmt_cell(final.get("rejection_reason")),
        ])
    for symbol in r.get("symbols") or []:
        if isinstance(symbol, str) and symbol not in covered:
            table.append([symbol, "-", "-", "-", "-", "-", "-", "no signal"])
    return table


def render_run(r: Dict[str, Any]) -> List[str]:
    kv = KeyValues()
    kv.append("iteration", fmt_cell(r.get("iteration")))
    kv.append("id", fmt_cell(r.get("iteration_id")))
    kv.append("duration", fmt_duration(r.get("duration_seconds")))
    kv.append("symbols", ", ".join(fmt_cell(s) for s in r.get("symbols") or []))
    if r.get("dry_run") is True:
        kv.append("dry run", "yes (nothing sent to the broker)")
    lines = kv.render() + [""] + signal_table(r).render()
    audit = r.get("audit_report")
    if isinstance(audit, dict):
        lines += ["", "audit: " + fmt_cell(audit.get("summary"))]
        if audit.get("recommendations") is not None:
            lines.append("recommendations: " + fmt_cell(audit.get("recommendations")))
    errors = r.get("errors") or []
    if errors:
        lines += ["", "errors:"]
        for e in errors:
            e = e if isinstance(e, dict) else {"message": e}
            symbol = f" {fmt_cell(e['symbol'])}" if e.get("symbol") is not None else ""
            lines.append(f"  {fmt_cell(e.get('stage'))}{symbol}: {fmt_cell(e.get('message'))}")
    return lines


def _read_json_arg(text: Optional[str], what: str) -> Any:
    if text is None:
        return None
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(f"{what} is not valid JSON ({e}); quote a string as '\"text\"'") from None


def _parse_meta(items: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    if not items:
        return None
    meta: Dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if not k:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    return meta


# --------------------------------------------------------------- commands


def cmd_ping(c: Client, a: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    r = c.ping()
    ms = (time.perf_counter() - t0) * 1000
    if a.json:
        _dump(r, a)
    else:
        _out([f"pong ({ms:.1f} ms)"])
    return EXIT_OK


def cmd_status(c: Client, a: argparse.Namespace) -> int:
    r = c.get_status()
    if a.json:
        _dump(r, a)
    else:
        _out(render_status(r))
    return EXIT_OK


def cmd_stats(c: Client, a: argparse.Namespace) -> int:
    r = c.get_stats()
    if a.json:
        _dump(r, a)
    else:
        _out(render_stats(r))
    return EXIT_OK


def cmd_history(c: Client, a: argparse.Namespace) -> int:
    r = c.get_event_history(event_type=a.type, limit=a.limit, since_seq=a.since)
    if a.json:
        _dump(r, a)
    else:
        _out(render_history(r, a.wide))
    return EXIT_OK


def cmd_publish(c: Client, a: argparse.Namespace) -> int:
    r = c.publish(a.event_type, a.data_value, a.meta_value)
    if a.json:
        _dump(r, a)
    else:
        _out(render_publish(r))
    return EXIT_OK


def cmd_subscribe(c: Client, a: argparse.Namespace) -> int:
    if a.count is not None and a.count <= 0:
        return EXIT_OK
    seen = 0
    sub = c.subscribe(*a.patterns, since_seq=a.since)
    try:
        for item in sub:
            if isinstance(item, EventsDropped):
                if a.json:
                    print(json.dumps({"events_dropped": dict(item)}, separators=(",", ":")), flush=True)
                else:
                    count = "an unknown number of" if item.count is None else str(item.count)
                    print(
                        f"tradewire: {count} events dropped on {fmt_cell(item.subscription)} "
                        f"(seq {fmt_cell(item.first_seq)}…{fmt_cell(item.last_seq)}); "
                        "fetch them with `python -m tradewire history --since SEQ`",
                        file=sys.stderr,
                        flush=True,
                    )
                continue
            if a.json:
                print(json.dumps(item, separators=(",", ":"), ensure_ascii=False), flush=True)
            else:
                print(render_event_line(item, a.wide), flush=True)
            seen += 1
            if a.count is not None and seen >= a.count:
                break
    except SubscriptionClosed:
        pass
    if sub.shutdown_reason is not None and not a.json:
        reason = f": {sub.shutdown_reason}" if sub.shutdown_reason else ""
        print(f"tradewire: the daemon is shutting down{reason}", file=sys.stderr)
    return EXIT_OK


def cmd_run(c: Client, a: argparse.Namespace) -> int:
    r = c.run_pipeline(
        symbols=a.symbols or None,
        strategy=a.strategy,
        dry_run=True if a.dry_run else None,
        timeout_ms=a.timeout_ms,
    )
    if a.json:
        _dump(r, a)
    else:
        _out(render_run(r))
    return EXIT_OK


def cmd_loop(c: Client, a: argparse.Namespace) -> int:
    if a.loop_cmd == "start":
        symbols = [s.strip() for s in a.symbols.split(",") if s.strip()] if a.symbols else None
        r = c.start_loop(interval_seconds=a.interval, symbols=symbols)
        if not a.json:
            on = f" on {', '.join(symbols)}" if symbols else ""
            _out([f"loop running every {fmt_cell(r.get('interval_seconds'))} s{on}"])
            return EXIT_OK
    else:
        r = c.stop_loop()
        if not a.json:
            n = r.get("iterations") if isinstance(r.get("iterations"), int) else 0
            _out([f"loop stopped after {n} iteration{'' if n == 1 else 's'}"])
            return EXIT_OK
    _dump(r, a)
    return EXIT_OK


def cmd_call(c: Client, a: argparse.Namespace) -> int:
    _dump(c.call(a.method, a.params_value, timeout=None), a)
    return EXIT_OK


def cmd_discover(c: Client, a: argparse.Namespace) -> int:
    _dump(c.discover(), a)
    return EXIT_OK


def cmd_shutdown(c: Client, a: argparse.Namespace) -> int:
    r = c.shutdown()
    if a.json:
        _dump(r, a)
    else:
        _out(["daemon is shutting down"])
    return EXIT_OK


# ----------------------------------------------------------------- parser

PROG = "python -m tradewire"
STRATEGIES = [
    "TrendFollowing", "MomentumRotation", "MeanReversion", "Breakout", "VolatilityBreakout",
    "RelativeStrength", "SectorRotation", "DualMomentum", "MovingAverageEnvelope", "BollingerBands",
]


def _examples(*lines: str) -> str:
    return "Examples:\n" + "\n".join(f"  {PROG} {x}" for x in lines)


def build_parser() -> argparse.ArgumentParser:
    # global options work before or after the command: `--json ping` and `ping --json`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="socket of tradewired (default: TRADEWIRE_SOCKET, $XDG_RUNTIME_DIR/tradewire.sock, "
                             "/tmp/tradewire-$UID/tradewire.sock)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the raw JSON result, compact, one line (one line per event for subscribe)")
    raw = argparse.RawDescriptionHelpFormatter

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to tradewired: publish and watch events, run the trading pipeline, inspect the daemon.\n\n"
                    "The socket is found as the daemon finds it: --socket PATH, then TRADEWIRE_SOCKET, then\n"
                    "$XDG_RUNTIME_DIR/tradewire.sock, then /tmp/tradewire-$UID/tradewire.sock. Every command\n"
                    "takes --json to print the raw JSON-RPC result on one line; --socket and --json may also\n"
                    f"come before the command ({PROG} --json status).",
        parents=[common],
        formatter_class=raw,
        epilog=_examples("ping", "run AAPL MSFT --dry-run", "subscribe '*' --json | jq .event_type",
                         "publish price.tick '{\"symbol\":\"SPY\",\"last\":512.3}'")
        + "\n\nExit codes: 0 ok, 1 the daemon returned an error, 2 bad usage, 3 cannot connect\n"
          "(or the socket is refused: its directory or its server is not yours).\n"
          "Start the daemon with `make run` (repo root) or `tradewired`.",
    )
    p.add_argument("--version", action="version", version=f"tradewire (python) {__version__}")
    sp = p.add_subparsers(dest="command", metavar="COMMAND")
    sp.required = True

    def add(name: str, abstract: str, discussion: str = "", examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        desc = abstract + (f"\n\n{discussion}" if discussion else "")
        return sp.add_parser(name, help=abstract, description=desc, parents=[common], formatter_class=raw,
                             epilog=_examples(*examples) if examples else None)

    add("ping", "Check that the daemon answers, and how fast.",
        "Prints `pong (0.3 ms)` with the round-trip time; exit 3 when no daemon listens.",
        ["ping", "ping --socket /tmp/tw.sock --json"]).set_defaults(func=cmd_ping)
    add("status", "Show the daemon's version, socket, mode, uptime and loop state.", "",
        ["status", "status --json | jq .loop.running"]).set_defaults(func=cmd_status)
    add("stats", "Show bus counters, subscriptions, published event types and pipeline latencies.",
        "Prints four tables: counters; event types with their client subscribers and\n"
        "in-daemon handlers; events published per type; pipeline stages with count, p50 and p99.",
        ["stats", "stats --json | jq .pipeline.stages"]).set_defaults(func=cmd_stats)

    h = add("history", "List recorded events, oldest first.",
            "Filters by type pattern and seq first, then keeps the last --limit records. The\n"
            "table shows SEQ, TIME (UTC), TYPE, SUBS (client subscribers at publish time) and\n"
            "the data, compact and cut to fit (--wide keeps it whole).",
            ["history --limit 20", "history --type 'audit_*' --since 100",
             "history --json --type data_ready | jq '.events[].seq'"])
    h.add_argument("--type", metavar="PATTERN", help="event type pattern (* and ? allowed)")
    h.add_argument("--limit", type=int, metavar="N", help="keep only the last N matching records (0: all)")
    h.add_argument("--since", type=int, metavar="SEQ", help="only records with seq > SEQ")
    h.add_argument("--wide", action="store_true", help="do not truncate the DATA column")
    h.set_defaults(func=cmd_history)

    pub = add("publish", "Publish one event.",
              "DATA is JSON text; `-` reads it from stdin; without it the data is null. Publishing\n"
              "a pipeline event type (data_ready, signals_ready, ...) runs the rest of the pipeline\n"
              "before the reply. --meta values are parsed as JSON when they can be, else taken as strings.",
              ["publish price.tick '{\"symbol\":\"SPY\",\"last\":512.3}'",
               "publish alert --meta source=cron --meta priority=2",
               "publish data_ready - < bars.json"])
    pub.add_argument("event_type", metavar="TYPE", help="event type: 1-128 chars of A-Z a-z 0-9 _ . : -")
    pub.add_argument("data", nargs="?", metavar="JSON|-", help="event data as JSON, or - to read it from stdin")
    pub.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata entry (repeatable)")
    pub.set_defaults(func=cmd_publish)

    s = add("subscribe", "Print events as they are published.",
            "One line per event: SEQ TIME TYPE DATA (compact, cut to fit; --wide keeps it whole).\n"
            "With --json, one compact event object per line ({seq, event_type, timestamp, data,\n"
            "metadata}), flushed at once, for jq. Several patterns are subscribed separately; an\n"
            "event matching more than one is printed once. Dropped-event notices go to stderr.\n"
            "Ends after --count events, or with exit 0 when the daemon shuts down.",
            ["subscribe '*'", "subscribe audit_ready executed_ready --since 0",
             "subscribe 'price.*' --json --count 10 | jq .data.last"])
    s.add_argument("patterns", nargs="+", metavar="PATTERN",
                   help="event type patterns (* and ? allowed; '*' for everything)")
    s.add_argument("--since", type=int, metavar="SEQ", help="replay recorded events with seq > SEQ first (0: all held)")
    s.add_argument("--count", type=int, metavar="N", help="exit after N events")
    s.add_argument("--wide", action="store_true", help="do not truncate the data")
    s.set_defaults(func=cmd_subscribe)

    r = add("run", "Run one pipeline iteration and show what it decided.",
            "Without symbols, the daemon's configured list. Prints the iteration, then one row per\n"
            "symbol (action, strategy, confidence after the quant stage, risk approval, quantity,\n"
            "fill, rejection reason), the audit summary and any stage errors. --dry-run sends\n"
            "nothing to the broker and changes no portfolio state.",
            ["run", "run AAPL MSFT --dry-run", "run SPY --strategy MeanReversion --timeout 30",
             "run --json | jq .audit_report.summary"])
    r.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols to trade (upper-cased by the daemon)")
    r.add_argument("--strategy", metavar="NAME", choices=STRATEGIES,
                   help="use this strategy for every symbol instead of the regime selector "
                        f"(one of: {', '.join(STRATEGIES)})")
    r.add_argument("--dry-run", action="store_true", help="show what would be executed without sending orders")
    r.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="pipeline deadline in seconds: 0.001...3600 (default 300)")
    r.set_defaults(func=cmd_run)

    lp = add("loop", "Start or stop the daemon's periodic pipeline loop.", "",
             ["loop start --interval 5 --symbols SPY,QQQ", "loop stop"])
    lsp = lp.add_subparsers(dest="loop_cmd", metavar="start|stop")
    lsp.required = True
    ls = lsp.add_parser(
        "start", parents=[common], formatter_class=raw,
        help="run an iteration every interval (updates the interval and symbols when already running)",
        description="Run an iteration every interval (updates the interval and symbols when already running).\n\n"
                    "Without --interval the daemon's configured interval (60 s by default); the minimum is 0.1 s.",
        epilog=_examples("loop start", "loop start --interval 0.5 --symbols AAPL,MSFT"))
    ls.add_argument("--interval", type=float, metavar="SECONDS", help="seconds between iterations (at least 0.1)")
    ls.add_argument("--symbols", metavar="A,B", help="comma-separated symbols for the loop")
    lsp.add_parser("stop", parents=[common], formatter_class=raw,
                   help="stop the loop (an iteration in flight finishes first)",
                   description="Stop the loop (an iteration in flight finishes first).",
                   epilog=_examples("loop stop", "loop stop --json | jq .iterations"))
    lp.set_defaults(func=cmd_loop)

    cl = add("call", "Call any JSON-RPC method with a params object and print the result.",
             "PARAMS is a JSON object; `-` reads it from stdin; without it, none. The result is\n"
             f"printed as indented JSON (compact with --json). `{PROG} discover` lists the methods.",
             ["call get_event_history '{\"limit\":5,\"include_data\":false}'",
              "call unsubscribe - <<< '{\"subscription\":\"s-1\"}'"])
    cl.add_argument("method", metavar="METHOD", help="method name, e.g. get_stats")
    cl.add_argument("params", nargs="?", metavar="JSON|-", help="params as a JSON object, or - to read them from stdin")
    cl.set_defaults(func=cmd_call)

    add("discover", "Print the daemon's OpenRPC document (every method with its params and result).", "",
        ["discover", "discover --json | jq -r '.methods[].name'"]).set_defaults(func=cmd_discover)
    add("shutdown", "Stop the daemon gracefully.",
        "Subscribers get a shutdown notice, a running iteration finishes, the socket is removed.",
        ["shutdown", "shutdown --socket /tmp/tw.sock"]).set_defaults(func=cmd_shutdown)
    return p


def _prepare(a: argparse.Namespace) -> None:
    """Check and convert arguments before connecting (usage errors exit 2 first)."""
    if a.command == "publish":
        a.data_value = _read_json_arg(a.data, "DATA")
        a.meta_value = _parse_meta(a.meta)
    elif a.command == "call":
        a.params_value = _read_json_arg(a.params, "PARAMS")
        if a.params_value is not None and not isinstance(a.params_value, (dict, list)):
            raise UsageError("PARAMS must be a JSON object")
    elif a.command == "run":
        a.timeout_ms = None
        if a.timeout is not None:
            if not (0 < a.timeout <= 3600):
                raise UsageError(f"--timeout must be between 0.001 and 3600 seconds, got {a.timeout:g}")
            a.timeout_ms = max(1, int(round(a.timeout * 1000)))
    elif a.command == "subscribe" and a.count is not None and a.count < 0:
        raise UsageError("--count must be >= 0")
    if a.command == "history" and a.limit is not None and a.limit < 0:
        raise UsageError("--limit must be 0 or more")
    if a.command in ("history", "subscribe") and a.since is not None and a.since < 0:
        raise UsageError("--since must be 0 or more")


def describe_rpc_error(e: RPCError) -> str:
    """``tradewire: <message> (<code> <type>)``; for invalid params ``tradewire: invalid
    parameters (...)``, then ``  at <path>: <message>`` once per parameter (the daemon's
    message already holds them, so it is not printed twice)."""
    errs = e.data.get("errors") if isinstance(e.data, dict) else None
    headline = "invalid parameters" if isinstance(errs, list) and errs else e.message
    lines = [f"tradewire: {headline} ({e.code} {e.type or 'error'})"]
    for entry in errs if isinstance(errs, list) else ():
        if isinstance(entry, dict):
            lines.append(f"  at {entry.get('path') or '/'}: {entry.get('message', '')}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    args.socket = getattr(args, "socket", None)
    try:
        _prepare(args)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Client(args.socket, timeout=None if args.command in ("subscribe", "call") else 60.0) as client:
            return int(args.func(client, args))
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RPCError as e:
        print(describe_rpc_error(e), file=sys.stderr)
        return EXIT_RPC
    except NotConnected as e:
        print(f"tradewire: {e}", file=sys.stderr)
        return EXIT_CONNECT
    except Timeout as e:
        print(f"tradewire: {e}", file=sys.stderr)
        return EXIT_RPC
    except TradewireError as e:
        print(f"tradewire: {e}", file=sys.stderr)
        return EXIT_RPC
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`| head`): exit quietly
        try:
            sys.stdout = open("/dev/null", "w")
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
