"""``python -m tradewire``: a small CLI over :class:`tradewire.Client`.

Exit codes: 0 ok, 1 the daemon answered with an error (printed to stderr),
2 usage error, 3 cannot connect to the daemon, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

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


def _dump(obj: Any, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), flush=True)
    else:
        print(json.dumps(obj, indent=2, ensure_ascii=False), flush=True)


def _short(value: Any, width: int = 100) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


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
    r = c.ping()
    if a.json:
        _dump(r, a)
    else:
        print("pong" if isinstance(r, dict) and r.get("pong") else _short(r), flush=True)
    return EXIT_OK


def cmd_status(c: Client, a: argparse.Namespace) -> int:
    r = c.get_status()
    if a.json:
        _dump(r, a)
        return EXIT_OK
    loop = r.get("loop") or {}
    print(f"tradewired {r.get('version')} (api_level {r.get('api_level')}), pid {r.get('pid')}, mode {r.get('mode')}")
    print(f"socket:  {r.get('socket')}")
    print(f"uptime:  {r.get('uptime_seconds')} s")
    state = "running" if loop.get("running") else "stopped"
    print(f"loop:    {state}, interval {loop.get('interval_seconds')} s, {loop.get('iterations')} iterations")
    last = loop.get("last_iteration")
    if last:
        print(f"last:    {_short(last, 200)}")
    return EXIT_OK


def cmd_stats(c: Client, a: argparse.Namespace) -> int:
    _dump(c.get_stats(), a)
    return EXIT_OK


def cmd_history(c: Client, a: argparse.Namespace) -> int:
    r = c.get_event_history(event_type=a.type, limit=a.limit, since_seq=a.since)
    if a.json:
        _dump(r, a)
        return EXIT_OK
    for ev in r.get("events") or []:
        print(f"{ev.get('seq'):>7}  {ev.get('timestamp')}  {ev.get('event_type')}  {_short(ev.get('data'))}")
    print(
        f"({len(r.get('events') or [])} shown; history holds seq {r.get('oldest_seq')}..{r.get('newest_seq')}, "
        f"capacity {r.get('capacity')})",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_publish(c: Client, a: argparse.Namespace) -> int:
    r = c.publish(a.event_type, a.data_value, a.meta_value)
    if a.json:
        _dump(r, a)
    else:
        line = f"published {r.get('event_type')} seq {r.get('seq')} to {r.get('subscribers')} subscriber(s)"
        if "iteration" in r:
            line += f"; iteration {r.get('iteration')} {'completed' if r.get('completed') else 'not completed'}"
        print(line, flush=True)
    return EXIT_OK


def cmd_subscribe(c: Client, a: argparse.Namespace) -> int:
    if a.count is not None and a.count <= 0:
        return EXIT_OK
    seen = 0
    sub = c.subscribe(*a.patterns, since_seq=a.since)
    if not a.json:
        print(f"subscribed to {', '.join(a.patterns)} ({', '.join(sub.ids.values())})", file=sys.stderr, flush=True)
    try:
        for item in sub:
            if isinstance(item, EventsDropped):
                if a.json:
                    print(json.dumps({"events_dropped": dict(item)}, separators=(",", ":")), flush=True)
                else:
                    what = "no longer in history" if item.history_gap else f"{item.count} skipped"
                    print(
                        f"warning: events {item.first_seq}..{item.last_seq} dropped ({what})",
                        file=sys.stderr,
                        flush=True,
                    )
                continue
            if a.json:
                print(json.dumps(item, separators=(",", ":"), ensure_ascii=False), flush=True)
            else:
                print(
                    f"{item.get('seq'):>7}  {item.get('timestamp')}  {item.get('event_type')}  {_short(item.get('data'))}",
                    flush=True,
                )
            seen += 1
            if a.count is not None and seen >= a.count:
                break
    except SubscriptionClosed:
        pass
    if sub.shutdown_reason is not None and not a.json:
        print(f"daemon shut down ({sub.shutdown_reason})", file=sys.stderr)
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
        return EXIT_OK
    print(
        f"iteration {r.get('iteration')} ({r.get('iteration_id')}) {', '.join(r.get('symbols') or [])} "
        f"in {r.get('duration_seconds')} s{' [dry run]' if r.get('dry_run') else ''}"
    )
    print(
        f"signals {len(r.get('signals') or [])}, validated {len(r.get('validated_signals') or [])}, "
        f"approved {len(r.get('approved_signals') or [])}, rejected {len(r.get('rejected_signals') or [])}, "
        f"executions {len(r.get('execution_results') or [])}"
    )
    for s in r.get("signals") or []:
        print(f"  signal  {s.get('symbol'):<6} {s.get('action'):<4} {s.get('strategy_name')} conf {s.get('confidence')}")
    for x in r.get("execution_results") or []:
        sig = x.get("signal") or {}
        status = "filled" if x.get("executed") else ("failed: " + str(x.get("error")) if x.get("error") else "not executed")
        print(
            f"  exec    {sig.get('symbol'):<6} {x.get('side')} {x.get('quantity')} @ {x.get('fill_price')} "
            f"order {x.get('order_id')} {status}"
        )
    for e in r.get("errors") or []:
        print(f"  error   {e.get('stage')} {e.get('symbol') or ''} {e.get('message')}")
    audit = r.get("audit_report") or {}
    if audit.get("summary"):
        print(f"audit: {audit.get('summary')}")
    return EXIT_OK


def cmd_loop(c: Client, a: argparse.Namespace) -> int:
    if a.loop_cmd == "start":
        symbols = [s for s in a.symbols.split(",") if s] if a.symbols else None
        r = c.start_loop(interval_seconds=a.interval, symbols=symbols)
        if not a.json:
            print(f"loop running, every {r.get('interval_seconds')} s")
            return EXIT_OK
    else:
        r = c.stop_loop()
        if not a.json:
            print(f"loop stopped after {r.get('iterations')} iteration(s)")
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
        print("daemon is shutting down")
    return EXIT_OK


# ----------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    # global options work before or after the command: `--json ping` and `ping --json`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="daemon socket (default: $TRADEWIRE_SOCKET, $XDG_RUNTIME_DIR/tradewire.sock, "
                             "/tmp/tradewire-$UID/tradewire.sock)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output: compact JSON (one object per line for subscribe)")

    p = argparse.ArgumentParser(
        prog="python -m tradewire",
        description="Talk to the tradewire daemon (tradewired) over its Unix socket.",
        parents=[common],
        epilog="Exit codes: 0 ok, 1 RPC error, 2 usage, 3 cannot connect. "
               "Start the daemon with `make run` (repo root) or `tradewired`.",
    )
    p.add_argument("--version", action="version", version=f"tradewire (python) {__version__}")
    sp = p.add_subparsers(dest="command", metavar="COMMAND")
    sp.required = True

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sp.add_parser(name, help=help, description=help, parents=[common])

    add("ping", "check the daemon answers").set_defaults(func=cmd_ping)
    add("status", "daemon status (version, pid, loop)").set_defaults(func=cmd_status)
    add("stats", "bus and pipeline statistics").set_defaults(func=cmd_stats)

    h = add("history", "recent events from the daemon's history")
    h.add_argument("--type", metavar="PATTERN", help="event-type pattern (* and ? allowed)")
    h.add_argument("--limit", type=int, metavar="N", help="keep the last N (after filtering)")
    h.add_argument("--since", type=int, metavar="SEQ", help="only events with seq > SEQ")
    h.set_defaults(func=cmd_history)

    pub = add("publish", "publish an event")
    pub.add_argument("event_type", metavar="TYPE")
    pub.add_argument("data", nargs="?", metavar="JSON|-", help="event data as JSON ('-' reads stdin); default null")
    pub.add_argument("--meta", action="append", metavar="K=V",
                     help="metadata entry (repeatable); V is parsed as JSON when it can be, else taken as a string")
    pub.set_defaults(func=cmd_publish)

    s = add("subscribe", "print events as they are published")
    s.add_argument("patterns", nargs="+", metavar="PATTERN")
    s.add_argument("--since", type=int, metavar="SEQ", help="first replay events with seq > SEQ still in history")
    s.add_argument("--count", type=int, metavar="N", help="exit after N events")
    s.set_defaults(func=cmd_subscribe)

    r = add("run", "run one pipeline iteration")
    r.add_argument("symbols", nargs="*", metavar="SYMBOL")
    r.add_argument("--strategy", metavar="NAME", help="force one of the ten strategies")
    r.add_argument("--dry-run", action="store_true", help="nothing reaches the broker")
    r.add_argument("--timeout", type=float, metavar="S", help="iteration deadline in seconds (default 300)")
    r.set_defaults(func=cmd_run)

    lp = add("loop", "start or stop the continuous loop")
    lsp = lp.add_subparsers(dest="loop_cmd", metavar="start|stop")
    lsp.required = True
    ls = lsp.add_parser("start", help="start (or reconfigure) the loop", parents=[common])
    ls.add_argument("--interval", type=float, metavar="S", help="seconds between iterations (min 0.1)")
    ls.add_argument("--symbols", metavar="SPY,QQQ", help="comma-separated symbols")
    lsp.add_parser("stop", help="stop the loop", parents=[common])
    lp.set_defaults(func=cmd_loop)

    cl = add("call", "call any method with JSON params")
    cl.add_argument("method", metavar="METHOD")
    cl.add_argument("params", nargs="?", metavar="JSON|-", help="params object as JSON ('-' reads stdin)")
    cl.set_defaults(func=cmd_call)

    add("discover", "the daemon's OpenRPC document (rpc.discover)").set_defaults(func=cmd_discover)
    add("shutdown", "stop the daemon gracefully").set_defaults(func=cmd_shutdown)
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
            a.timeout_ms = int(round(a.timeout * 1000))
            if a.timeout_ms < 1:
                raise UsageError("--timeout must be positive")
    elif a.command == "subscribe" and a.count is not None and a.count < 0:
        raise UsageError("--count must be >= 0")


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
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RPC
    except NotConnected as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONNECT
    except Timeout as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RPC
    except TradewireError as e:
        print(f"error: {e}", file=sys.stderr)
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
