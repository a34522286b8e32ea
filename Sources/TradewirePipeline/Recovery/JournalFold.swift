import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewireTrading

/// What the pipeline's state is after a run of journal records: the fold that recovery runs
/// at start (PROTOCOL §10), that replay runs up to an iteration, and that checkpoints save.
///
/// It reads only what the daemon itself journaled:
/// - the six pipeline events, keyed by their `metadata.iteration_id` (an iteration is open
///   from its first event until its `audit_ready` or `iteration_aborted`);
/// - `approved_ready` commits the approved non-HOLD signals' `risk_amount` to the risk
///   budget of the iteration's UTC day, and `executed_ready` books every `executed: true`
///   result through ``Ledger/book(symbol:side:quantity:fillPrice:commission:mark:)`` (the
///   broker's own code) and releases the risk of refused orders — all skipped for events
///   stamped `metadata.dry_run`;
/// - `audit_ready` closes the iteration and, outside dry runs, yields its audit summary;
///   loop iterations (`metadata.loop`) count toward the loop's totals.
///
/// - `trading_state_changed` sets the trading state (`since` from its data; without one, the
///   event's time, kept when the state repeats).
///
/// A record it cannot read (a client's malformed data, say) is skipped and counted; the
/// fold never throws.
public struct JournalFold: Sendable {
    /// An iteration whose end is not in the journal yet.
    public struct OpenIteration: Sendable, Equatable {
        public var number: Int
        public var id: String
        public var lastStage: PipelineStage
        public var startedAt: Date
        public var dryRun: Bool
        public var loop: Bool
        /// Its `executed_ready` results (for the audit summary).
        public var executionResults: [ExecutionResult] = []
    }

    /// The risk budget: the UTC day number and the dollars committed on it.
    public struct Budget: Sendable, Equatable {
        public var day: Int64?
        public var committed: Double
    }

    /// The books, as the broker keeps them.
    public var ledger: Ledger
    public var budget = Budget(day: nil, committed: 0)
    /// The highest iteration number seen.
    public var lastIteration = 0
    /// Audit summaries of finished non-dry iterations, oldest first (the newest
    /// ``summaryCapacity``).
    public var summaries: [IterationSummary] = []
    public let summaryCapacity: Int
    /// Loop iterations finished or aborted.
    public var loopIterations = 0
    /// The last finished loop iteration.
    public var lastLoopIteration: IterationSummaryView?
    /// Iterations started but not ended, by id.
    public var open: [String: OpenIteration] = [:]
    /// The last record folded.
    public var asOfSeq = 0
    /// Records that looked like the daemon's but could not be read.
    public var unreadable = 0
    /// The trading state the last `trading_state_changed` set (nil: none folded, so active).
    public var tradingState: TradingStateSnapshot?

    public init(startingCash: Money, summaryCapacity: Int = 10_000) {
        self.ledger = Ledger(cash: startingCash)
        self.summaryCapacity = max(1, summaryCapacity)
    }

    /// The risk committed on the UTC day of `date`.
    public func committedRisk(on date: Date) -> Double {
        budget.day == RiskBudget.utcDay(date) ? budget.committed : 0
    }

    /// Folds one record (records must come in seq order).
    public mutating func apply(_ record: JournalRecord) {
        asOfSeq = max(asOfSeq, record.seq)
        if record.type == Self.abortedType {
            guard let metadata = try? JSONParser.parse(record.data).objectValue,
                let id = metadata["iteration_id"]?.stringValue, let iteration = open.removeValue(forKey: id)
            else { return }
            if iteration.loop { loopIterations += 1 }
            return
        }
        if record.type == TradingStateController.changedEventType {
            applyTradingState(record)
            return
        }
        guard let event = PipelineEvent(rawValue: record.type) else { return }
        guard let metadata = try? JSONParser.parse(record.metadata).objectValue,
            let number = metadata["iteration"]?.intValue, let id = metadata["iteration_id"]?.stringValue
        else {
            unreadable += 1
            return
        }
        lastIteration = max(lastIteration, number)
        var iteration =
            open[id]
            ?? OpenIteration(
                number: number, id: id, lastStage: .none, startedAt: record.timestamp,
                dryRun: metadata["dry_run"]?.boolValue == true, loop: metadata["loop"]?.boolValue == true)
        iteration.lastStage = max(iteration.lastStage, event.completedStage)
        switch event {
        case .dataReady, .signalsReady, .validatedReady:
            break
        case .approvedReady:
            if !iteration.dryRun { commitApprovals(record, on: iteration.startedAt) }
        case .executedReady:
            guard let results = decodeList(ExecutionResult.self, record) else { break }
            iteration.executionResults = results
            if !iteration.dryRun { book(results, on: iteration.startedAt) }
        case .auditReady:
            open[id] = nil
            let report = decode(AuditReport.self, record)
            finish(iteration, report: report, at: report?.timestamp ?? record.timestamp)
            return
        }
        open[id] = iteration
    }

    /// The iterations still open, oldest first.
    public var openIterations: [OpenIteration] {
        open.values.sorted { ($0.number, $0.id) < ($1.number, $1.id) }
    }

    /// The event type recovery publishes for an iteration the daemon stopped in.
    public static let abortedType = "iteration_aborted"

    private mutating func applyTradingState(_ record: JournalRecord) {
        guard let data = try? JSONParser.parse(record.data), let name = data["state"]?.stringValue,
            let state = TradingState(rawValue: name), let reason = data["reason"]?.stringValue
        else {
            unreadable += 1
            return
        }
        let since =
            data["since"]?.stringValue.flatMap(RFC3339.date(from:))
            ?? tradingState.flatMap { $0.state == state ? $0.since : nil } ?? record.timestamp
        tradingState = TradingStateSnapshot(state: state, since: since, reason: reason)
    }

    private mutating func commitApprovals(_ record: JournalRecord, on date: Date) {
        guard let signals = decodeList(TradingSignal.self, record) else { return }
        let amount = signals.reduce(0.0) { total, signal in
            guard signal.approved, signal.action != .hold, let risk = signal.riskAmount, risk.isFinite, risk > 0
            else { return total }
            return total + risk
        }
        let day = RiskBudget.utcDay(date)
        if budget.day != day { budget = Budget(day: day, committed: 0) }
        budget.committed += amount
    }

    private mutating func book(_ results: [ExecutionResult], on date: Date) {
        let day = RiskBudget.utcDay(date)
        for result in results {
            if result.executed {
                guard let price = result.fillPrice, let side = result.side, let quantity = result.quantity,
                    let fill = try? Money(validatingDollars: price),
                    let commission = try? Money(validatingDollars: result.commission ?? 0)
                else {
                    unreadable += 1
                    continue
                }
                do {
                    try ledger.book(
                        symbol: result.signal.symbol, side: side, quantity: quantity, fillPrice: fill,
                        commission: commission, mark: result.signal.price.flatMap { try? Money(validatingDollars: $0) })
                } catch {
                    unreadable += 1
                }
            } else if result.error != nil, let risk = result.signal.riskAmount, risk.isFinite, risk > 0,
                budget.day == day
            {
                budget.committed = max(0, budget.committed - risk)
            }
        }
    }

    private mutating func finish(_ iteration: OpenIteration, report: AuditReport?, at time: Date) {
        let metrics = report?.metrics ?? [:]
        func count(_ key: String) -> Int { metrics[key]?.intValue ?? 0 }
        let duration = metrics["duration_seconds"]?.doubleValue ?? 0
        if !iteration.dryRun {
            // The summary's lists are not in the report: the execution results come from the
            // iteration's executed_ready; error texts are not kept (their count is).
            let summary = IterationSummary(
                iterationNumber: iteration.number, timestamp: time,
                signalsGenerated: count("signals_generated"), signalsValidated: count("signals_validated"),
                signalsApproved: count("signals_approved"), signalsExecuted: count("signals_executed"),
                executionResults: iteration.executionResults,
                errors: Array(repeating: "recovered from the journal", count: min(count("error_count"), 1000)),
                durationSeconds: duration)
            summaries.append(summary)
            if summaries.count > summaryCapacity { summaries.removeFirst(summaries.count - summaryCapacity) }
        }
        if iteration.loop {
            loopIterations += 1
            lastLoopIteration = IterationSummaryView(
                iteration: iteration.number, iterationID: iteration.id, finishedAt: time, durationSeconds: duration,
                signals: count("signals_generated"), approved: count("signals_approved"),
                executed: count("signals_executed"), errors: count("error_count"))
        }
    }

    private mutating func decode<T: JSONDecodable>(_ type: T.Type, _ record: JournalRecord) -> T? {
        guard let json = try? JSONParser.parse(record.data), let value = try? T(json: json, path: "") else {
            unreadable += 1
            return nil
        }
        return value
    }

    private mutating func decodeList<T: JSONDecodable>(_ type: T.Type, _ record: JournalRecord) -> [T]? {
        guard let json = try? JSONParser.parse(record.data), let items = json.arrayValue else {
            unreadable += 1
            return nil
        }
        var values: [T] = []
        values.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard let value = try? T(json: item, path: "/\(index)") else {
                unreadable += 1
                return nil
            }
            values.append(value)
        }
        return values
    }
}
