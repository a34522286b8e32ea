import Foundation
import TradewireJSON
import TradewireTrading

/// One finished iteration: the `run_pipeline` result of PROTOCOL §5, identical in shape
/// whichever orchestrator produced it.
public struct IterationResult: Sendable, Equatable {
    public var iteration: Int
    public var iterationID: String
    public var symbols: [String]
    public var durationSeconds: Double
    public var marketData: [String: MarketData]
    public var signals: [TradingSignal]
    public var validatedSignals: [TradingSignal]
    public var approvedSignals: [TradingSignal]
    public var rejectedSignals: [TradingSignal]
    public var executionResults: [ExecutionResult]
    public var auditReport: AuditReport
    public var errors: [StageError]
    /// Remote handler calls in call order (empty when none is registered).
    public var handlers: [HandlerCallRecord]
    public var dryRun: Bool
    public var finishedAt: Date
    /// Set on a replay: what it replayed and how today's decisions differ.
    public var replay: ReplayOutcome? = nil

    /// Results with `executed: true`.
    public var executedCount: Int { executionResults.filter(\.executed).count }

    /// The protocol object; `includeMarketData` writes full MarketData instead of the
    /// per-symbol summary `{bars, first_timestamp, last_timestamp, last_close}`.
    public func encodeJSON(to writer: inout JSONWriter, includeMarketData: Bool) {
        writer.beginObject()
        writer.field("iteration", iteration)
        writer.field("iteration_id", iterationID)
        writer.field("symbols", symbols)
        writer.field("duration_seconds", durationSeconds)
        writer.key("market_data")
        writer.beginObject()
        for symbol in marketData.keys.sorted() {
            let data = marketData[symbol]!
            writer.key(symbol)
            if includeMarketData {
                writer.write(data)
            } else {
                writer.beginObject()
                writer.field("bars", data.bars.count)
                writer.field("first_timestamp", data.bars.first?.timestamp)
                writer.field("last_timestamp", data.bars.last?.timestamp)
                writer.field("last_close", data.bars.last?.close)
                writer.endObject()
            }
        }
        writer.endObject()
        writer.field("signals", signals)
        writer.field("validated_signals", validatedSignals)
        writer.field("approved_signals", approvedSignals)
        writer.field("rejected_signals", rejectedSignals)
        writer.field("execution_results", executionResults)
        writer.field("audit_report", auditReport)
        writer.field("errors", errors)
        writer.field("handlers", handlers)
        writer.field("dry_run", dryRun)
        if let replay { writer.field("replay", replay) }
        writer.endObject()
    }

    /// The loop's `last_iteration` summary.
    public var summary: IterationSummaryView {
        IterationSummaryView(
            iteration: iteration, iterationID: iterationID, finishedAt: finishedAt, durationSeconds: durationSeconds,
            signals: signals.count, approved: approvedSignals.count, executed: executedCount, errors: errors.count)
    }
}

extension IterationResult: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { encodeJSON(to: &writer, includeMarketData: false) }
}

/// `{"iteration", "iteration_id", "finished_at", "duration_seconds", "signals", "approved",
/// "executed", "errors"}` (PROTOCOL §8, Loop).
public struct IterationSummaryView: Sendable, Equatable, JSONEncodable {
    public var iteration: Int
    public var iterationID: String
    public var finishedAt: Date
    public var durationSeconds: Double
    public var signals: Int
    public var approved: Int
    public var executed: Int
    public var errors: Int

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("iteration", iteration)
        writer.field("iteration_id", iterationID)
        writer.field("finished_at", finishedAt)
        writer.field("duration_seconds", durationSeconds)
        writer.field("signals", signals)
        writer.field("approved", approved)
        writer.field("executed", executed)
        writer.field("errors", errors)
        writer.endObject()
    }
}
