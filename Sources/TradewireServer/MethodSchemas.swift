import TradewireJSON
import TradewireRPC

/// Parameter and result descriptions of every method: used to reject unknown parameters and
/// to answer `rpc.discover` with an OpenRPC document.
enum MethodSchemas {
    private static let string: JSONValue = ["type": "string"]
    private static let integer: JSONValue = ["type": "integer"]
    private static let nonNegative: JSONValue = ["type": "integer", "minimum": 0]
    private static let boolean: JSONValue = ["type": "boolean"]
    private static let number: JSONValue = ["type": "number"]
    private static let object: JSONValue = ["type": "object"]
    private static let symbols: JSONValue = [
        "type": "array", "items": ["type": "string", "pattern": "^[A-Za-z][A-Za-z0-9.-]{0,9}$"],
    ]
    private static func objectWith(_ keys: [String]) -> JSONValue {
        ["type": "object", "required": .array(keys.map { JSONValue($0) })]
    }

    static let subscribe = MethodDescription(
        "subscribe", summary: "Receive events whose type matches a pattern (* and ?) as `event` notifications.",
        params: [
            ParamDescription(
                "event_type", schema: string, required: true, summary: "Pattern, e.g. signals_ready or *."),
            ParamDescription(
                "since_seq", schema: nonNegative,
                summary: "Replay history after this seq first, without gap or duplicate."),
        ],
        result: objectWith(["subscription", "event_type"]))

    static let unsubscribe = MethodDescription(
        "unsubscribe", summary: "Remove this connection's subscription by id, or all with exactly this pattern.",
        params: [
            ParamDescription("subscription", schema: string, summary: "A subscription id (s-N)."),
            ParamDescription("event_type", schema: string, summary: "A pattern, compared exactly."),
        ],
        result: objectWith(["removed"]))

    static let publish = MethodDescription(
        "publish", summary: "Publish an event; pipeline event types start a new iteration from that stage.",
        params: [
            ParamDescription(
                "event_type", schema: string, required: true, summary: "1-128 chars of A-Z a-z 0-9 _ . : -"),
            ParamDescription("data", schema: [:], summary: "Any JSON (default null)."),
            ParamDescription("metadata", schema: object, summary: "Free-form metadata kept with the event."),
        ],
        result: objectWith(["seq", "event_type", "timestamp", "subscribers"]))

    static let runPipeline = MethodDescription(
        "run_pipeline", summary: "Run one iteration: data, strategy, quant, risk, execution, audit.",
        params: [
            ParamDescription(
                "symbols", schema: symbols, summary: "Symbols (upper-cased); default the configured list."),
            ParamDescription(
                "timeout_ms", schema: ["type": "integer", "minimum": 1, "maximum": 3_600_000],
                summary: "Deadline (default 300000)."),
            ParamDescription(
                "market_data", schema: object, summary: "{SYMBOL: MarketData} to use instead of the provider."),
            ParamDescription(
                "include_market_data", schema: boolean, summary: "Return full MarketData instead of summaries."),
            ParamDescription(
                "strategy", schema: string, summary: "One of the ten strategy names: overrides the selector."),
            ParamDescription("dry_run", schema: boolean, summary: "Nothing reaches the broker; no state changes."),
        ],
        result: objectWith([
            "iteration", "iteration_id", "symbols", "duration_seconds", "market_data", "signals", "validated_signals",
            "approved_signals", "rejected_signals", "execution_results", "audit_report", "errors", "dry_run",
        ]))

    static let getStats = MethodDescription(
        "get_stats", summary: "Bus and pipeline counters.",
        result: objectWith([
            "total_event_types", "total_subscribers", "event_types", "total_events_published", "events_published",
            "events_delivered", "events_dropped", "handler_errors", "published_by_type", "connections",
            "history_size", "history_capacity", "uptime_seconds", "pipeline",
        ]))

    static let getEventHistory = MethodDescription(
        "get_event_history", summary: "Recorded events, oldest first: filter, then keep the last `limit`.",
        params: [
            ParamDescription("event_type", schema: string, summary: "Pattern filter."),
            ParamDescription("limit", schema: nonNegative, summary: "Keep the last N (0 or absent: all)."),
            ParamDescription("since_seq", schema: nonNegative, summary: "Only events with a greater seq."),
            ParamDescription("include_data", schema: boolean, summary: "Default true; false leaves `data` out."),
        ],
        result: objectWith(["events", "oldest_seq", "newest_seq", "capacity"]))

    static let startLoop = MethodDescription(
        "start_loop", summary: "Start the continuous loop (or update its interval and symbols).",
        params: [
            ParamDescription(
                "interval_seconds", schema: ["type": "number", "minimum": 0.1], summary: "Seconds between iterations."),
            ParamDescription("symbols", schema: symbols, summary: "Symbols for loop iterations."),
        ],
        result: objectWith(["running", "interval_seconds"]))

    static let stopLoop = MethodDescription(
        "stop_loop", summary: "Stop the loop; an iteration in flight finishes first.",
        result: objectWith(["running", "iterations"]))

    static let getStatus = MethodDescription(
        "get_status", summary: "Version, pid, socket, mode, uptime and loop state.",
        result: objectWith(["version", "api_level", "pid", "socket", "mode", "uptime_seconds", "loop"]))

    static let ping = MethodDescription("ping", summary: "Liveness check.", result: objectWith(["pong"]))

    static let discover = MethodDescription(
        "rpc.discover", summary: "This OpenRPC document.", result: objectWith(["openrpc", "info", "methods"]))

    static let shutdown = MethodDescription(
        "shutdown", summary: "Reply, notify every connection, then stop gracefully.", result: objectWith(["ok"]))
}
