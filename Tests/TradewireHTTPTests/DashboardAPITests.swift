import Foundation
import Testing
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireServer
import TradewireTrading

@testable import TradewireHTTP

/// The dashboard's `/api/` routes (PROTOCOL §12) on an in-process daemon without a journal:
/// their shapes, their bounds and their refusals.
@Suite struct DashboardAPITests {
    static let symbols = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"]

    func api(_ daemon: Daemon) -> DashboardAPI {
        DashboardAPI(daemon: daemon, streams: EventStreams(maximum: 4), equity: EquityCurve(daemon: daemon))
    }

    func get(_ api: DashboardAPI, _ path: String, _ query: [String: String] = [:]) async throws -> JSONValue {
        try await api.answer(path: path, query: query).get()
    }

    func failure(_ api: DashboardAPI, _ path: String, _ query: [String: String] = [:]) async -> DashboardAPI.Failure? {
        if case .failure(let failure) = await api.answer(path: path, query: query) { return failure }
        return nil
    }

    func run(_ daemon: Daemon, dryRun: Bool = false) async throws -> IterationResult {
        try await daemon.pipeline.orchestrator.run(
            IterationRequest(symbols: Self.symbols, strategy: .trendFollowing, dryRun: dryRun))
    }

    @Test func statusIsGetStatusWithTheConnectionCounts() async throws {
        let daemon = makeDaemon()
        let status = try await get(api(daemon), "/api/status")
        let rpc = await daemon.status()
        for key in ["version", "api_level", "mode", "uptime_seconds", "loop", "trading_state", "stages"] {
            #expect(status[key] != nil, "\(key)")
        }
        #expect(status["version"] == rpc["version"] && status["api_level"] == 2)
        #expect(status["trading_state"]?["state"] == "active")
        #expect(status["loop"]?["running"] == false)
        #expect(status["connections"] == 0 && status["events_dropped"] == 0 && status["event_streams"] == 0)
        #expect(status["last_seq"] == JSONValue(daemon.bus.lastSeq))
    }

    @Test func pipelineListsTheSixStagesWithCountsAndHealth() async throws {
        let daemon = makeDaemon()
        let api = api(daemon)
        _ = try await run(daemon)
        let pipeline = try await get(api, "/api/pipeline")
        let stages = try #require(pipeline["stages"]?.arrayValue)
        #expect(stages.map { $0["stage"]?.stringValue } == ["data", "strategy", "quant", "risk", "execution", "audit"])
        for stage in stages {
            #expect(stage["count"] == 1 && stage["health"] == "ok" && stage["groups"] == [])
            #expect(stage["p50_ms"]?.doubleValue != nil && stage["p99_ms"]?.doubleValue != nil)
        }
        #expect(pipeline["runs"] == 1 && pipeline["failures"] == 0 && pipeline["timeouts"] == 0)
        #expect(pipeline["last_iteration"]?.stringValue != nil)
    }

    @Test func iterationsAreNewestFirstAndBounded() async throws {
        let daemon = makeDaemon()
        let api = api(daemon)
        let first = try await run(daemon)
        let dry = try await run(daemon, dryRun: true)
        let third = try await run(daemon)
        let all = try #require(try await get(api, "/api/iterations")["iterations"]?.arrayValue)
        #expect(all.map { $0["iteration_id"]?.stringValue } == [third.iterationID, dry.iterationID, first.iterationID])
        let row = all[2]
        #expect(row["iteration"] == JSONValue(first.iteration) && row["dry_run"] == false && all[1]["dry_run"] == true)
        #expect(row["symbols"] == .array(Self.symbols.sorted().map { JSONValue($0) }) && row["symbols_count"] == 6)
        #expect(row["signals"] == JSONValue(first.signals.count))
        #expect(row["approved"] == JSONValue(first.approvedSignals.count))
        #expect(row["rejected"] == JSONValue(first.rejectedSignals.count))
        #expect(row["executed"] == JSONValue(first.executedCount) && row["errors"] == JSONValue(first.errors.count))
        #expect(row["outcome"] == "completed" && row["duration_seconds"]?.doubleValue != nil)
        let two = try #require(try await get(api, "/api/iterations", ["limit": "2"])["iterations"]?.arrayValue)
        #expect(two.count == 2 && two[0]["iteration_id"] == JSONValue(third.iterationID))
        for bad in ["0", "201", "-1", "ten", ""] {
            let refused = await failure(api, "/api/iterations", ["limit": bad])
            #expect(refused?.code == 400 && refused?.type == "invalid_params", "limit \(bad)")
        }
    }

    @Test func anIterationsDetailCarriesTheRunResultsDecisions() async throws {
        let daemon = makeDaemon()
        let api = api(daemon)
        _ = await daemon.pipeline.tradingState.set(.halted, reason: "api test", by: .operator)
        let result = try await run(daemon)
        #expect(!result.rejectedSignals.isEmpty)
        let detail = try await get(api, "/api/iterations/\(result.iterationID)")
        #expect(detail["source"] == "memory" && detail["reasons_recorded"] == true && detail["outcome"] == "completed")
        let decisions = try #require(detail["decisions"]?.arrayValue)
        #expect(decisions.count == result.signals.count && detail["decisions_total"] == JSONValue(result.signals.count))
        for signal in result.rejectedSignals {
            let decision = try #require(decisions.first { $0["symbol"] == JSONValue(signal.symbol) })
            #expect(decision["approved"] == false)
            #expect(decision["rejection_reason"] == JSONValue(signal.rejectionReason ?? "none"))
            #expect(decision["strategy"] == JSONValue(signal.strategyName) && decision["fill"] == .null)
        }
        for signal in result.approvedSignals {
            let decision = decisions.first { $0["symbol"] == JSONValue(signal.symbol) }
            #expect(decision?["approved"] == true && decision?["rejection_reason"] == .null)
        }
        #expect(detail["audit"]?["summary"] == JSONValue(result.auditReport.summary))

        let unknown = await failure(api, "/api/iterations/nope-1")
        #expect(unknown?.code == 404 && unknown?.type == "unknown_iteration")
        for bad in [String(repeating: "x", count: 129), "a\u{7}b", "é"] {
            let refused = await failure(api, "/api/iterations/\(bad)")
            #expect(refused?.code == 400 && refused?.type == "invalid_params")
        }
    }

    @Test func anIterationPastTheRingIsReadFromTheRecordsWithoutReasons() async throws {
        let daemon = makeDaemon()
        let result = try await run(daemon)
        // A ring that keeps nothing: the detail comes from the bus's history.
        let views = IterationViews(
            recent: RecentIterations(capacity: 1), records: PipelineRecords(bus: daemon.bus, journal: nil))
        let detail = try #require(try views.detail(result.iterationID))
        #expect(detail["source"] == "history" && detail["reasons_recorded"] == false)
        #expect(detail["iteration"] == JSONValue(result.iteration) && detail["outcome"] == "completed")
        let decisions = try #require(detail["decisions"]?.arrayValue)
        #expect(decisions.count == result.signals.count)
        for signal in result.approvedSignals {
            #expect(decisions.first { $0["signal_id"] == JSONValue(signal.id) }?["approved"] == true)
        }
        for signal in result.rejectedSignals {
            let decision = decisions.first { $0["signal_id"] == JSONValue(signal.id) }
            #expect(decision?["approved"] == false && decision?["rejection_reason"] == .null)
        }
        for execution in result.executionResults {
            let fill = decisions.first { $0["signal_id"] == JSONValue(execution.signal.id) }?["fill"]
            #expect(fill?["executed"] == JSONValue(execution.executed))
            #expect(fill?["fill_price"] == execution.fillPrice.map { JSONValue($0) } ?? .null)
        }
        let rows = try #require(try views.rows(limit: 5)["iterations"]?.arrayValue)
        #expect(rows.count == 1 && rows[0]["iteration_id"] == JSONValue(result.iterationID))
        #expect(rows[0]["signals"] == JSONValue(result.signals.count))
        #expect(rows[0]["rejected"] == JSONValue(result.rejectedSignals.count))
        #expect(try views.detail("t-999") == nil)
    }

    @Test func portfolioIsGetPortfolioAndTheCurveEndsAtItsEquity() async throws {
        let daemon = makeDaemon()
        let api = api(daemon)
        var fills = 0
        var runsWithFills = 0
        for _ in 0..<3 {
            let executed = try await run(daemon).executedCount
            fills += executed
            if executed > 0 { runsWithFills += 1 }
        }
        #expect(fills > 0, "TrendFollowing on these symbols trades")
        let portfolio = try await get(api, "/api/portfolio")
        var rpc = await daemon.portfolio()
        if case .object(var object) = rpc {
            object["as_of_seq"] = portfolio["as_of_seq"]
            rpc = .object(object)
        }
        #expect(portfolio == rpc)
        let curve = try await get(api, "/api/equity")
        let points = try #require(curve["points"]?.arrayValue)
        #expect(curve["fills"] == JSONValue(fills) && curve["starting_cash"] == 100_000)
        #expect(points.last?["equity"] == portfolio["equity"] && curve["equity"] == portfolio["equity"])
        #expect(
            points.count == (fills > 0 ? runsWithFills + 2 : 2), "the start, one per executed_ready with fills, now")
        let two = try #require(try await get(api, "/api/equity", ["points": "2"])["points"]?.arrayValue)
        #expect(two.count == 2 && two.last?["equity"] == portfolio["equity"])
        for bad in ["1", "1001", "x"] {
            #expect(await failure(api, "/api/equity", ["points": bad])?.code == 400)
        }
    }

    @Test func consumersAndDeadLettersAreListedWithoutEvents() async throws {
        let daemon = makeDaemon()
        let api = api(daemon)
        #expect(try await get(api, "/api/consumers") == ["consumers": [], "total": 0])
        #expect(try await get(api, "/api/dead_letters") == ["dead_letters": []])
        #expect(await failure(api, "/api/dead_letters", ["limit": "201"])?.code == 400)
    }

    @Test func anUnknownRouteIs404WithTheRoutes() async throws {
        let refused = await failure(api(makeDaemon()), "/api/nothing")
        #expect(refused?.code == 404 && refused?.type == "not_found")
        #expect(refused?.message.contains("/api/status") == true)
        #expect(refused?.json["error"]?["type"] == "not_found")
    }

    @Test func curvePointsAreThinnedEvenlyKeepingBothEnds() {
        let points = (0..<10).map { EquityCurve.Point(seq: $0, time: Date(), equity: Double($0)) }
        #expect(EquityCurve.pick(points, limit: 4).map(\.seq) == [0, 3, 6, 9])
        #expect(EquityCurve.pick(points, limit: 20).count == 10)
        #expect(EquityCurve.halved(points).map(\.seq) == [0, 2, 4, 6, 8, 9])
    }
}
