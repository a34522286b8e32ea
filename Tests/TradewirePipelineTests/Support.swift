import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

/// A fixed "now" so that runs are reproducible: Friday 2026-11-20 15:00 UTC.
let fixedNow = Date(timeIntervalSince1970: 1_763_650_800)

enum Mode: CaseIterable { case sequential, eventDriven }

func makeOrchestrator(
    _ mode: Mode, seed: UInt64 = 42, symbols: [String] = ["AAPL", "MSFT", "GOOGL"],
    provider: (any MarketDataProvider)? = nil, bus: EventBus = EventBus(logger: quietLogger),
    timeout: Duration = .seconds(300),
    config: TradingConfig = TradingConfig(), stageHandlers: any StageHandlerSource = NoStageHandlers()
) -> any Orchestrator {
    let logger = quietLogger
    let agents = TradingAgents(
        config: config, provider: provider ?? SimulatedMarketDataProvider(seed: seed), logger: logger)
    switch mode {
    case .sequential:
        return SequentialOrchestrator(
            bus: bus, agents: agents, stageHandlers: stageHandlers, defaultSymbols: symbols, defaultTimeout: timeout,
            iterationIDPrefix: "t",
            clock: { fixedNow }, logger: logger)
    case .eventDriven:
        return EventDrivenOrchestrator(
            bus: bus, agents: agents, stageHandlers: stageHandlers, defaultSymbols: symbols, defaultTimeout: timeout,
            iterationIDPrefix: "t",
            clock: { fixedNow }, logger: logger)
    }
}

/// Everything an iteration decided, without wall-clock durations.
struct Decisions: Equatable {
    var signals: [TradingSignal]
    var validated: [TradingSignal]
    var approved: [TradingSignal]
    var rejected: [TradingSignal]
    var executions: [ExecutionResult]
    var metrics: JSONObject
    var summary: String
    var errors: [StageError]

    init(_ result: IterationResult) {
        signals = result.signals
        validated = result.validatedSignals
        approved = result.approvedSignals
        rejected = result.rejectedSignals
        executions = result.executionResults
        var metrics = result.auditReport.metrics
        metrics["duration_seconds"] = nil
        self.metrics = metrics
        summary = result.auditReport.summary
        errors = result.errors
    }
}

/// Symbols like S000, S001, … (valid tickers).
func syntheticSymbols(_ count: Int) -> [String] {
    (0..<count).map { "S" + String(format: "%03d", $0) }
}

/// A provider that never answers (for deadline tests).
struct HangingProvider: MarketDataProvider {
    var name: String { "hanging" }
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        try await Task.sleep(for: .seconds(3600))
        throw CancellationError()
    }
}

struct FailingProvider: MarketDataProvider {
    var name: String { "failing" }
    struct Down: Error {}
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData { throw Down() }
}

/// Tests provoke failures on purpose (failing providers, deadlines): their expected warnings
/// stay out of the test output.
let quietLogger = Logger(label: "tradewire.pipeline.tests", factory: { _ in SwiftLogNoOpLogHandler() })

extension EventBus {
    /// Everything in history, as the journal would hold it.
    var journalRecords: [JournalRecord] {
        history().records.map { record in
            let event = record.event
            return JournalRecord(
                seq: event.seq, type: event.type, timestamp: event.timestamp, data: Array(event.dataJSON),
                metadata: Array(event.metadataJSON), dataType: event.payload.jsonTypeName,
                subscriberCount: record.subscriberCount)
        }
    }
}
