import TradewireJSON

/// A JSON-RPC error object: `{"code", "message", "data": {"type", ...}}` (PROTOCOL §2).
///
/// `type` is the stable snake_case name programs switch on; `details` adds members to `data`.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var type: String
    public var details: JSONObject

    public init(code: Int, message: String, type: String, details: JSONObject = [:]) {
        self.code = code
        self.message = message
        self.type = type
        self.details = details
    }

    public var description: String { "\(message) (\(code) \(type))" }

    /// The error object as JSON.
    public var json: JSONValue {
        var data: JSONObject = ["type": JSONValue(type)]
        for member in details where member.key != "type" { data[member.key] = member.value }
        return ["code": JSONValue(code), "message": JSONValue(message), "data": .object(data)]
    }

    // MARK: the error table of PROTOCOL §2

    public static func parseError(_ detail: String) -> RPCError {
        RPCError(code: -32700, message: "Parse error: \(detail)", type: "parse_error")
    }
    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: -32600, message: "Invalid request: \(detail)", type: "invalid_request")
    }
    public static func messageTooLarge(limit: Int) -> RPCError {
        RPCError(
            code: -32600, message: "Invalid request: message longer than \(limit) bytes", type: "message_too_large",
            details: ["limit": JSONValue(limit)])
    }
    public static func batchTooLarge(count: Int, limit: Int) -> RPCError {
        RPCError(
            code: -32600, message: "Invalid request: batch of \(count) entries exceeds \(limit)",
            type: "batch_too_large",
            details: ["limit": JSONValue(limit)])
    }
    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(
            code: -32601, message: "Method not found: \(method)", type: "method_not_found",
            details: ["method": JSONValue(method)])
    }
    /// `errors`: `{path, message}` pairs, `path` a JSON Pointer into params.
    public static func invalidParams(_ errors: [JSONDecodingError]) -> RPCError {
        let first = errors.first.map { "\($0.path.isEmpty ? "params" : $0.path): \($0.message)" } ?? "invalid params"
        return RPCError(
            code: -32602, message: "Invalid params: \(first)", type: "invalid_params",
            details: [
                "errors": .array(errors.map { ["path": JSONValue($0.path), "message": JSONValue($0.message)] })
            ])
    }
    public static func invalidParams(path: String, _ message: String) -> RPCError {
        invalidParams([JSONDecodingError(path: path, message: message)])
    }
    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: -32603, message: "Internal error: \(detail)", type: "internal_error")
    }
    public static let shuttingDown = RPCError(
        code: -32000, message: "The daemon is shutting down", type: "shutting_down")
    public static func overloaded(limit: Int) -> RPCError {
        RPCError(
            code: -32001, message: "Too many requests in flight on this connection (limit \(limit))",
            type: "overloaded", details: ["limit": JSONValue(limit)])
    }
    /// A publish over the connection's `--publish-rate` (PROTOCOL §12): nothing was recorded.
    public static func rateLimited(retryAfterMilliseconds: Int, perSecond: Double, burst: Int) -> RPCError {
        RPCError(
            code: -32002,
            message:
                "Publish rate limit reached (\(perSecond)/s, burst \(burst)); retry in \(retryAfterMilliseconds) ms",
            type: "rate_limited", details: ["retry_after_ms": JSONValue(retryAfterMilliseconds)])
    }
    /// A batch whose answers alone exceed the connection's outbound budget: its remaining
    /// entries are not started.
    public static func batchOverBudget(budget: Int) -> RPCError {
        RPCError(
            code: -32001,
            message:
                "The batch's responses exceed this connection's outbound budget (\(budget) bytes); send fewer or smaller requests per batch",
            type: "overloaded", details: ["budget_bytes": JSONValue(budget)])
    }
    /// The daemon already serves `--max-connections` clients.
    public static func tooManyConnections(limit: Int) -> RPCError {
        RPCError(
            code: -32001, message: "Too many connections (limit \(limit)); try again later", type: "overloaded",
            details: ["max_connections": JSONValue(limit)])
    }
    /// A second `replace` group for a stage (PROTOCOL §9).
    public static func stageConflict(stage: String, existing: String) -> RPCError {
        RPCError(
            code: -32030,
            message:
                "Stage \(stage) already has a replace group (\(existing)); unregister it first or register with mode after",
            type: "stage_conflict", details: ["stage": JSONValue(stage), "existing": JSONValue(existing)])
    }
    /// `run_pipeline {replay}` of an iteration the journal does not hold (PROTOCOL §10).
    public static func unknownIteration(_ iterationID: String, _ detail: String) -> RPCError {
        RPCError(
            code: -32012, message: detail, type: "unknown_iteration",
            details: ["iteration_id": JSONValue(iterationID)])
    }

    /// The cluster's database cannot be reached: nothing was recorded or acknowledged
    /// (PROTOCOL §13).
    public static func clusterUnavailable(_ detail: String) -> RPCError {
        RPCError(
            code: -32003, message: "The cluster database cannot be reached; nothing was recorded (\(detail))",
            type: "cluster_unavailable")
    }

    /// A trading call on a cluster node that does not lead (or whose book is still being
    /// restored): -32003 as §13 has no code of its own for it, with a message that says so.
    public static func notLeader(_ detail: String) -> RPCError {
        RPCError(
            code: -32003, message: "This node does not lead the cluster: \(detail)", type: "cluster_unavailable")
    }

    /// A `run_pipeline` handed to the cluster's leader that got no answer in time: -32011
    /// like any pipeline timeout, without an iteration when none started (PROTOCOL §13).
    public static func handOffTimedOut(_ detail: String) -> RPCError {
        RPCError(
            code: -32011, message: "Pipeline timeout: \(detail)", type: "pipeline_timeout",
            details: ["iteration": .null, "iteration_id": .null, "stage": .null])
    }

    /// Too many `run_pipeline` calls wait for the cluster's leader already: nothing was recorded.
    public static func handOffOverloaded(_ detail: String) -> RPCError {
        RPCError(code: -32001, message: "Too many runs wait for the leader: \(detail)", type: "overloaded")
    }

    /// A handed-over `run_pipeline` whose leader was lost while running it (its iteration
    /// was aborted by the next leader, and never runs again).
    public static func leaderLost(_ detail: String) -> RPCError {
        RPCError(code: -32003, message: "The cluster's leader was lost: \(detail)", type: "cluster_unavailable")
    }

    /// `ack`/`nak` for a consumer this connection is not subscribed with (PROTOCOL §11).
    public static func unknownConsumer(_ name: String) -> RPCError {
        RPCError(
            code: -32040,
            message: "Unknown consumer \(name) on this connection: subscribe with {consumer: \"\(name)\"} first",
            type: "unknown_consumer", details: ["consumer": JSONValue(name)])
    }

    /// `retry_dead_letter` of an id no consumer holds.
    public static func deadLetterNotFound(_ id: Int) -> RPCError {
        RPCError(
            code: -32041, message: "No dead letter \(id) (see get_dead_letters)", type: "dead_letter_not_found",
            details: ["id": JSONValue(id)])
    }

    public static func forbidden(uid: UInt32) -> RPCError {
        RPCError(
            code: -32020, message: "Forbidden: uid \(uid) may not use this daemon", type: "forbidden",
            details: ["uid": JSONValue(Int(uid))])
    }
}

/// An error that knows its JSON-RPC rendering.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError: RPCErrorConvertible {
    public var rpcError: RPCError { self }
}

extension JSONDecodingError: RPCErrorConvertible {
    public var rpcError: RPCError { .invalidParams([self]) }
}

extension RPCError {
    /// Reads an error object back (one another node answered): nil when `json` is not
    /// `{"code": int, "message": string, "data"?: {"type": string, ...}}`.
    public init?(json: JSONValue) {
        guard let code = json["code"]?.intValue, let message = json["message"]?.stringValue else { return nil }
        var details = json["data"]?.objectValue ?? [:]
        let type = details["type"]?.stringValue ?? "error"
        details["type"] = nil
        self.init(code: code, message: message, type: type, details: details)
    }
}
