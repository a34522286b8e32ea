import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireServer

/// The dashboard's read-only JSON routes under `/api/` (PROTOCOL §12). Each answer is built
/// by the code of the RPC method it mirrors (or from the journal, as replay reads it) and is
/// bounded: lists have a maximum, and no answer carries market data or event payloads.
///
/// - `/api/status`: `get_status`, plus `connections`, `events_dropped`, `event_streams`,
///   `last_seq`.
/// - `/api/pipeline`: the six stages with their counts, latencies, remote groups and health.
/// - `/api/iterations?limit=N` (1…200, default 50) and `/api/iterations/ID`.
/// - `/api/portfolio`: `get_portfolio`. `/api/equity?points=N` (2…1000, default 300).
/// - `/api/consumers`, `/api/dead_letters?limit=N` (1…200, default 50, without events).
struct DashboardAPI: Sendable {
    let daemon: Daemon
    let streams: EventStreams
    let equity: EquityCurve

    /// Consumers one answer lists (the registry holds up to 1024).
    static let maximumConsumers = 200
    static let maximumDeadLetters = 200
    static let defaultDeadLetters = 50
    /// Longest iteration id asked for.
    static let maximumIDLength = 128

    /// Routes every `/api/` path: unknown ones are 404.
    static let routes = [
        "/api/status", "/api/pipeline", "/api/iterations", "/api/iterations/ID", "/api/portfolio", "/api/equity",
        "/api/consumers", "/api/dead_letters",
    ]

    /// A refused request: rendered as `{"error": {"type", "message"}}`.
    struct Failure: Error, Equatable {
        var status: HTTPResponse.Status
        var type: String
        var message: String

        /// The status code (400, 404, 500).
        var code: Int { status.code }
        var json: JSONValue { ["error": ["type": JSONValue(type), "message": JSONValue(message)]] }
    }

    var iterations: IterationViews {
        IterationViews(
            recent: daemon.pipeline.orchestrator.metrics.recentIterations,
            records: PipelineRecords(bus: daemon.bus, journal: daemon.pipeline.journal))
    }

    /// The answer to `GET path?query`.
    func answer(path: String, query: [String: String]) async -> Result<JSONValue, Failure> {
        do {
            return .success(try await route(path: path, query: query))
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure(status: .internalServerError, type: "internal_error", message: "\(error)"))
        }
    }

    private func route(path: String, query: [String: String]) async throws -> JSONValue {
        switch path {
        case "/api/status": return await status()
        case "/api/pipeline": return pipeline()
        case "/api/iterations":
            let limit = try Self.integer(
                "limit", query, in: 1...IterationViews.maximumLimit, default: IterationViews.defaultLimit)
            return try journalRead { () throws(JournalError) in try iterations.rows(limit: limit) }
        case "/api/portfolio": return await daemon.portfolio()
        case "/api/equity":
            let points = try Self.integer(
                "points", query, in: 2...EquityCurve.maximumPoints, default: EquityCurve.defaultPoints)
            return await equity.snapshot(points: points)
        case "/api/consumers":
            let all = try await clusterRead { () async throws(RPCError) in try await daemon.consumerList() }
            return [
                "consumers": .array(Array(all.prefix(Self.maximumConsumers))), "total": JSONValue(all.count),
            ]
        case "/api/dead_letters":
            let limit = try Self.integer(
                "limit", query, in: 1...Self.maximumDeadLetters, default: Self.defaultDeadLetters)
            let letters = try await clusterRead { () async throws(RPCError) in
                try await daemon.deadLetters(limit: limit, withEvent: false)
            }
            return ["dead_letters": .array(letters)]
        default:
            let prefix = "/api/iterations/"
            guard path.hasPrefix(prefix) else {
                throw Failure(
                    status: .notFound, type: "not_found",
                    message: "no such route: \(path) (routes: \(Self.routes.joined(separator: ", ")))")
            }
            return try iteration(String(path.dropFirst(prefix.count)))
        }
    }

    // MARK: routes

    private func status() async -> JSONValue {
        guard case .object(var status) = await daemon.status() else { return .null }
        status["connections"] = JSONValue(daemon.connections.count)
        status["events_dropped"] = JSONValue(daemon.connections.eventsDropped)
        status["event_streams"] = JSONValue(streams.count)
        status["last_seq"] = JSONValue(daemon.bus.lastSeq)
        return .object(status)
    }

    /// `{"runs", "failures", "timeouts", "last_duration_seconds", "last_iteration", "stages":
    /// [{"stage", "count", "p50_ms", "p99_ms", "health", "groups": [group…]}]}`: the six
    /// stages in order. A group is as `get_status.stages` lists it, plus `failing` and
    /// `last_failure`; a stage's `health` is `fail_closed` when a failing group of it fails
    /// closed, `failing` when another group of it fails, else `ok`.
    private func pipeline() -> JSONValue {
        let metrics = daemon.pipeline.orchestrator.metrics
        let snapshot = metrics.snapshot()
        let groups = daemon.stageGroups()
        let health = StageHealth(metrics.recentIterations.newest(1).first)
        var stages: [JSONValue] = []
        for stage in PipelineStage.working {
            let latency = snapshot["stages"]?[stage.rawValue]
            var stageGroups: [JSONValue] = []
            var state = "ok"
            for group in groups[stage.rawValue]?.arrayValue ?? [] {
                guard case .object(var object) = group else { continue }
                let failure = health.failure(stage: stage, group: object)
                object["failing"] = JSONValue(failure != nil)
                object["last_failure"] = failure ?? .null
                if failure != nil {
                    // Only risk and execution fail closed; elsewhere `fail_closed` acts as `skip`.
                    let closes = object["on_failure"]?.stringValue == "fail_closed" && stage >= .risk
                    if closes { state = "fail_closed" } else if state == "ok" { state = "failing" }
                }
                stageGroups.append(.object(object))
            }
            if state == "ok", health.stalled == stage { state = "failing" }
            stages.append(
                [
                    "stage": JSONValue(stage.rawValue), "count": latency?["count"] ?? 0,
                    "p50_ms": latency?["p50_ms"] ?? .null, "p99_ms": latency?["p99_ms"] ?? .null,
                    "health": JSONValue(state), "groups": .array(stageGroups),
                ])
        }
        return [
            "runs": snapshot["runs"] ?? 0, "failures": snapshot["failures"] ?? 0,
            "timeouts": snapshot["timeouts"] ?? 0, "last_duration_seconds": snapshot["last_duration_seconds"] ?? .null,
            "last_iteration": health.iterationID.map { JSONValue($0) } ?? .null, "stages": .array(stages),
        ]
    }

    private func iteration(_ id: String) throws -> JSONValue {
        guard !id.isEmpty, id.count <= Self.maximumIDLength,
            id.unicodeScalars.allSatisfy({ $0.isASCII && $0.properties.generalCategory != .control })
        else {
            throw Failure(
                status: .badRequest, type: "invalid_params",
                message: "an iteration id is 1-\(Self.maximumIDLength) printable ASCII characters")
        }
        guard let detail = try journalRead({ () throws(JournalError) in try iterations.detail(id) }) else {
            throw Failure(
                status: .notFound, type: "unknown_iteration",
                message: "iteration \(id) is not known (never run, still running, or pruned)")
        }
        return detail
    }

    // MARK: helpers

    /// A reading that may come from a cluster's database: 503 while it cannot be reached.
    private func clusterRead<T>(_ body: () async throws(RPCError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw Failure(status: .serviceUnavailable, type: error.type, message: error.message)
        }
    }

    private func journalRead<T>(_ body: () throws(JournalError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw Failure(
                status: .internalServerError, type: "internal_error", message: "journal read failed: \(error)")
        }
    }

    /// An integer query parameter within `range` (absent: `fallback`).
    static func integer(_ name: String, _ query: [String: String], in range: ClosedRange<Int>, default fallback: Int)
        throws(Failure) -> Int
    {
        guard let text = query[name] else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Failure(
                status: .badRequest, type: "invalid_params",
                message: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return value
    }
}

/// Which stages and groups failed in the newest iteration this process ran.
struct StageHealth {
    /// The newest iteration's id.
    var iterationID: String?
    /// Failed handler calls, by stage and group name.
    var failures: [String: JSONValue] = [:]
    /// The stage a timed-out iteration was waiting for.
    var stalled: PipelineStage?

    init(_ entry: RecentIterations.Entry?) {
        guard let entry else { return }
        iterationID = entry.id
        switch entry.outcome {
        case .completed(let result):
            for call in result.handlers {
                guard let failure = call.failure else { continue }
                failures["\(call.stage.rawValue)/\(call.name)"] = [
                    "iteration_id": JSONValue(entry.id), "reason": JSONValue(failure.reason.rawValue),
                    "message": JSONValue(failure.message),
                ]
            }
        case .noMarketData: stalled = .data
        case .timedOut(let stage):
            stalled = PipelineStage.working.first { $0 > stage }
        }
    }

    /// A group's failure in the newest iteration, or `no_member` for a group that has none
    /// (each of its calls fails until one registers).
    func failure(stage: PipelineStage, group: JSONObject) -> JSONValue? {
        let name = group["name"]?.stringValue ?? ""
        if let failure = failures["\(stage.rawValue)/\(name)"] { return failure }
        guard group["members"]?.intValue == 0 else { return nil }
        return [
            "iteration_id": .null, "reason": "no_member",
            "message": JSONValue("the group \(stage.rawValue)/\(name) has no member"),
        ]
    }
}

extension DashboardAPI {
    /// The HTTP answer: the JSON with 200, or the failure's status with its error object.
    func respond(to request: Request) async -> Response {
        var query: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { query[String(name)] = String(value) }
        let status: HTTPResponse.Status
        let json: JSONValue
        switch await answer(path: request.uri.path, query: query) {
        case .success(let value): (status, json) = (.ok, value)
        case .failure(let failure): (status, json) = (failure.status, failure.json)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(
            status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(json)))
        )
    }
}
