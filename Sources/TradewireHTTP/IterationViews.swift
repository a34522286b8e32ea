import Foundation
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireTrading

/// The dashboard's iterations: the rows of its table (`/api/iterations`) and one
/// iteration's decisions (`/api/iterations/ID`).
///
/// They come first from ``RecentIterations`` (this process's last iterations exactly as
/// `run_pipeline` answered, rejection reasons and error texts included), then from the
/// recorded events (the journal, or the history with `--ephemeral`), which keep every signal,
/// validation, approval and fill, but neither rejection reasons nor error texts.
struct IterationViews: Sendable {
    /// Rows one answer may hold.
    static let maximumLimit = 200
    static let defaultLimit = 50
    /// Symbols listed per row (`symbols_count` says how many there were).
    static let symbolsPerRow = 20
    /// Decisions, errors and handler calls listed in one iteration's detail.
    static let maximumListed = 500

    let recent: RecentIterations
    let records: PipelineRecords

    static let decisionTypes = [
        PipelineEvent.signalsReady, .validatedReady, .approvedReady, .executedReady, .auditReady,
    ].map(\.rawValue)

    // MARK: rows

    private struct Row {
        var finishedAt: Date
        var number: Int
        var id: String
        var value: JSONValue
    }

    /// `{"iterations": [row…], "limit"}`, newest first.
    func rows(limit: Int) throws(JournalError) -> JSONValue {
        var rows = recent.newest(limit).map(Self.row)
        if rows.count < limit {
            let seen = Set(rows.map(\.id))
            let audits = try records.newest(PipelineEvent.auditReady.rawValue, limit: limit).filter {
                $0.iterationID.map { !seen.contains($0) } ?? false
            }
            if !audits.isEmpty {
                // Each iteration's symbols are its signals' (one per symbol with enough bars).
                var symbols: [String: [String]] = [:]
                let signals = try records.newest(PipelineEvent.signalsReady.rawValue, limit: limit + 32)
                for record in signals {
                    guard let id = record.iterationID else { continue }
                    symbols[id] = Set(Self.signals(record.data).map(\.symbol)).sorted()
                }
                rows += audits.map { Self.row($0, symbols: symbols[$0.iterationID ?? ""]) }
            }
        }
        rows.sort { ($0.finishedAt, $0.number) > ($1.finishedAt, $1.number) }
        return ["iterations": .array(rows.prefix(limit).map(\.value)), "limit": JSONValue(limit)]
    }

    private struct Counts {
        var signals = 0
        var validated = 0
        var approved = 0
        var rejected = 0
        var executed = 0
        var errors = 0
    }

    private static func row(_ entry: RecentIterations.Entry) -> Row {
        var counts = Counts()
        var finishedAt = entry.finishedAt
        switch entry.outcome {
        case .completed(let result):
            counts = Counts(
                signals: result.signals.count, validated: result.validatedSignals.count,
                approved: result.approvedSignals.count, rejected: result.rejectedSignals.count,
                executed: result.executedCount, errors: result.errors.count)
            finishedAt = result.finishedAt
        case .noMarketData(let errors): counts.errors = max(1, errors.count)
        case .timedOut: counts.errors = 1
        }
        return row(
            number: entry.number, id: entry.id, finishedAt: finishedAt, symbols: entry.symbols, counts: counts,
            durationSeconds: entry.durationSeconds, dryRun: entry.dryRun, outcome: outcomeName(entry.outcome))
    }

    /// A row from a recorded `audit_ready` (its report's metrics hold the counts).
    private static func row(_ audit: PipelineRecord, symbols: [String]?) -> Row {
        let metrics = audit.data["metrics"]
        func count(_ key: String) -> Int { metrics?[key]?.intValue ?? 0 }
        let counts = Counts(
            signals: count("signals_generated"), validated: count("signals_validated"),
            approved: count("signals_approved"),
            rejected: max(0, count("signals_validated") - count("signals_approved")),
            executed: count("signals_executed"), errors: count("error_count"))
        return row(
            number: audit.iteration ?? 0, id: audit.iterationID ?? "", finishedAt: audit.timestamp,
            symbols: symbols, counts: counts, durationSeconds: metrics?["duration_seconds"]?.doubleValue ?? 0,
            dryRun: audit.isDryRun, outcome: "completed")
    }

    private static func row(
        number: Int, id: String, finishedAt: Date, symbols: [String]?, counts: Counts, durationSeconds: Double,
        dryRun: Bool, outcome: String
    ) -> Row {
        var value = JSONObject()
        value.append("iteration", JSONValue(number))
        value.append("iteration_id", JSONValue(id))
        value.append("finished_at", JSONValue(RFC3339.string(from: finishedAt)))
        value.append("symbols", strings((symbols ?? []).prefix(symbolsPerRow)))
        value.append("symbols_count", nullable(symbols?.count))
        value.append("signals", JSONValue(counts.signals))
        value.append("validated", JSONValue(counts.validated))
        value.append("approved", JSONValue(counts.approved))
        value.append("rejected", JSONValue(counts.rejected))
        value.append("executed", JSONValue(counts.executed))
        value.append("errors", JSONValue(counts.errors))
        value.append("duration_seconds", JSONValue(durationSeconds))
        value.append("dry_run", JSONValue(dryRun))
        value.append("outcome", JSONValue(outcome))
        return Row(finishedAt: finishedAt, number: number, id: id, value: .object(value))
    }

    private static func outcomeName(_ outcome: RecentIterations.Outcome) -> String {
        switch outcome {
        case .completed: "completed"
        case .noMarketData: "no_market_data"
        case .timedOut: "timeout"
        }
    }

    // MARK: detail

    /// One iteration's decisions; nil when neither this process nor the records know it.
    func detail(_ id: String) throws(JournalError) -> JSONValue? {
        if let entry = recent.entry(id: id) { return Self.detail(entry) }
        let recorded = try records.records(
            ofIteration: id, types: Self.decisionTypes + ["stage_failed", JournalFold.abortedType])
        guard let first = recorded.first else { return nil }
        return Self.detail(id: id, recorded, first: first, source: records.sourceName)
    }

    private static func detail(_ entry: RecentIterations.Entry) -> JSONValue {
        var detail = JSONObject()
        detail.append("iteration", JSONValue(entry.number))
        detail.append("iteration_id", JSONValue(entry.id))
        detail.append("finished_at", JSONValue(RFC3339.string(from: entry.finishedAt)))
        detail.append("symbols", strings(entry.symbols.prefix(maximumListed)))
        detail.append("dry_run", JSONValue(entry.dryRun))
        detail.append("outcome", JSONValue(outcomeName(entry.outcome)))
        detail.append("duration_seconds", JSONValue(entry.durationSeconds))
        detail.append("source", "memory")
        detail.append("reasons_recorded", true)
        var decisions: [JSONValue] = []
        var errors: [StageError] = []
        var handlers: [HandlerCallRecord] = []
        var audit: JSONValue = .null
        switch entry.outcome {
        case .completed(let result):
            detail["finished_at"] = JSONValue(RFC3339.string(from: result.finishedAt))
            decisions = Self.decisions(
                signals: result.signals, validated: result.validatedSignals, approved: result.approvedSignals,
                rejected: result.rejectedSignals, executions: result.executionResults)
            errors = result.errors
            handlers = result.handlers
            audit = auditJSON(result.auditReport.summary, result.auditReport.recommendations)
        case .noMarketData(let stageErrors):
            errors =
                stageErrors.isEmpty ? [StageError(stage: .data, message: "no market data for any symbol")] : stageErrors
        case .timedOut(let stage):
            errors = [StageError(stage: stage, message: "the deadline passed after stage \(stage.rawValue)")]
        }
        detail["decisions"] = .array(Array(decisions.prefix(maximumListed)))
        detail["decisions_total"] = JSONValue(decisions.count)
        detail["errors"] = .array(errors.prefix(maximumListed).map { Self.encoded($0) })
        detail["error_count"] = JSONValue(errors.count)
        detail["handlers"] = .array(handlers.prefix(maximumListed).map { Self.encoded($0) })
        var failures: [JSONValue] = []
        for call in handlers.prefix(maximumListed) {
            guard let failure = call.failure else { continue }
            var object = JSONObject()
            object.append("stage", JSONValue(call.stage.rawValue))
            object.append("name", JSONValue(call.name))
            object.append("reason", JSONValue(failure.reason.rawValue))
            object.append("message", JSONValue(failure.message))
            failures.append(.object(object))
        }
        detail["stage_failures"] = .array(failures)
        detail["audit"] = audit
        return .object(detail)
    }

    /// The detail as the recorded events tell it: no rejection reason, and errors only where
    /// an event carries them (refused orders, failed handler calls).
    private static func detail(id: String, _ recorded: [PipelineRecord], first: PipelineRecord, source: String)
        -> JSONValue
    {
        var signals: [TradingSignal] = []
        var validated: [TradingSignal]?
        var approved: [TradingSignal]?
        var executions: [ExecutionResult] = []
        var audit: PipelineRecord?
        var aborted: PipelineRecord?
        var failures: [JSONValue] = []
        for record in recorded {
            switch record.type {
            case PipelineEvent.signalsReady.rawValue: signals = Self.signals(record.data)
            case PipelineEvent.validatedReady.rawValue: validated = Self.signals(record.data)
            case PipelineEvent.approvedReady.rawValue: approved = Self.signals(record.data)
            case PipelineEvent.executedReady.rawValue: executions = Self.list(record.data, ExecutionResult.self)
            case PipelineEvent.auditReady.rawValue: audit = record
            case JournalFold.abortedType: aborted = record
            default:
                guard failures.count < maximumListed, let data = record.data.objectValue else { continue }
                var failure = JSONObject()
                for key in ["stage", "name", "reason", "message", "policy"] { failure.append(key, data[key] ?? .null) }
                failures.append(.object(failure))
            }
        }
        let dryRun = first.isDryRun
        let decisions = Self.decisions(
            signals: signals, validated: validated, approved: approved, rejected: nil, executions: executions)
        let errors = executions.filter { !$0.executed && !dryRun }.map {
            StageError(stage: .execution, symbol: $0.signal.symbol, message: $0.error ?? "not executed")
        }
        let metrics = audit?.data["metrics"]
        let outcome = audit != nil ? "completed" : aborted != nil ? "aborted" : "running"
        let symbols = Set((signals + (validated ?? [])).map(\.symbol)).sorted()
        var detail = JSONObject()
        detail.append("iteration", JSONValue(first.iteration ?? 0))
        detail.append("iteration_id", JSONValue(id))
        detail.append("finished_at", nullable((audit ?? aborted).map { RFC3339.string(from: $0.timestamp) }))
        detail.append("symbols", strings(symbols.prefix(maximumListed)))
        detail.append("dry_run", JSONValue(dryRun))
        detail.append("outcome", JSONValue(outcome))
        detail.append("duration_seconds", metrics?["duration_seconds"] ?? .null)
        detail.append("source", JSONValue(source))
        detail.append("reasons_recorded", false)
        detail.append("decisions", .array(Array(decisions.prefix(maximumListed))))
        detail.append("decisions_total", JSONValue(decisions.count))
        detail.append("errors", .array(errors.prefix(maximumListed).map { Self.encoded($0) }))
        detail.append("error_count", metrics?["error_count"] ?? JSONValue(errors.count))
        detail.append("handlers", [])
        detail.append("stage_failures", .array(failures))
        let report = audit?.data
        detail.append(
            "audit",
            report.map { auditJSON($0["summary"]?.stringValue ?? "", $0["recommendations"]?.stringValue) } ?? .null)
        return .object(detail)
    }

    private static func auditJSON(_ summary: String, _ recommendations: String?) -> JSONValue {
        ["summary": JSONValue(summary), "recommendations": recommendations.map { JSONValue($0) } ?? .null]
    }

    /// Each signal's way through the stages, by symbol: strategy and confidence, confidence
    /// after quant, the risk decision (`rejected` nil: the reasons are unknown) and the fill.
    static func decisions(
        signals: [TradingSignal], validated: [TradingSignal]?, approved: [TradingSignal]?,
        rejected: [TradingSignal]?, executions: [ExecutionResult]
    ) -> [JSONValue] {
        func byID(_ list: [TradingSignal]?) -> [String: TradingSignal] {
            Dictionary((list ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
        let validatedByID = byID(validated)
        let approvedByID = byID(approved)
        let rejectedByID = byID(rejected)
        let fills = Dictionary(executions.map { ($0.signal.id, $0) }, uniquingKeysWith: { first, _ in first })
        // A client may start an iteration after the strategy stage: its signals are the later lists'.
        var all = signals
        var seen = Set(signals.map(\.id))
        for signal in (validated ?? []) + (approved ?? []) + (rejected ?? []) where seen.insert(signal.id).inserted {
            all.append(signal)
        }
        all.sort { ($0.symbol, $0.strategyName, $0.id) < ($1.symbol, $1.strategyName, $1.id) }
        let riskRan = approved != nil || rejected != nil
        return all.map { signal in
            let checked = validatedByID[signal.id]
            let decided = approvedByID[signal.id] ?? rejectedByID[signal.id]
            // Approved; rejected (risk decided, or saw it validated and did not approve it); or
            // never decided (null).
            let approval: JSONValue
            if approvedByID[signal.id] != nil {
                approval = true
            } else if decided != nil || (riskRan && checked != nil) {
                approval = false
            } else {
                approval = .null
            }
            let final = decided ?? checked ?? signal
            var decision = JSONObject()
            decision.append("signal_id", JSONValue(signal.id))
            decision.append("symbol", JSONValue(signal.symbol))
            decision.append("action", JSONValue(final.action.rawValue))
            decision.append("strategy", JSONValue(signal.strategyName))
            decision.append("confidence", JSONValue(signal.confidence))
            decision.append("confidence_after_quant", nullable(checked?.confidence))
            decision.append("validated", JSONValue(checked != nil))
            decision.append("approved", approval)
            decision.append("rejection_reason", nullable(decided?.approved == false ? decided?.rejectionReason : nil))
            decision.append("qty", nullable(final.qty))
            decision.append("price", nullable(final.price))
            decision.append("stop_loss", nullable(final.stopLoss))
            decision.append("take_profit", nullable(final.takeProfit))
            decision.append("reasoning", nullable(final.reasoning))
            decision.append("fill", fills[signal.id].map(fillJSON) ?? .null)
            return .object(decision)
        }
    }

    private static func fillJSON(_ result: ExecutionResult) -> JSONValue {
        var fill = JSONObject()
        fill.append("executed", JSONValue(result.executed))
        fill.append("order_id", nullable(result.orderID))
        fill.append("fill_price", nullable(result.fillPrice))
        fill.append("quantity", nullable(result.quantity))
        fill.append("side", nullable(result.side?.rawValue))
        fill.append("commission", nullable(result.commission))
        fill.append("error", nullable(result.error))
        return .object(fill)
    }

    // MARK: decoding

    static func signals(_ data: JSONValue) -> [TradingSignal] { list(data, TradingSignal.self) }

    /// The readable elements of a recorded list (a client's malformed ones are skipped).
    static func list<T: JSONDecodable>(_ data: JSONValue, _ type: T.Type) -> [T] {
        (data.arrayValue ?? []).enumerated().compactMap { index, item in try? T(json: item, path: "/\(index)") }
    }

    /// A model as a JSON value.
    static func encoded(_ value: some JSONEncodable) -> JSONValue {
        (try? JSONParser.parse(JSONWriter.encode(value))) ?? .null
    }

    /// A list of strings as JSON.
    static func strings(_ values: some Sequence<String>) -> JSONValue { .array(values.map { JSONValue($0) }) }
}

/// A value as JSON, null when absent.
private func nullable(_ value: String?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
private func nullable(_ value: Int?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
private func nullable(_ value: Double?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
