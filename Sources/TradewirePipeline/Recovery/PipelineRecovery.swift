import Foundation
import Logging
import TradewireBus
import TradewireJSON
import TradewireTrading

/// What recovery found and did at start.
public struct RecoveryReport: Sendable, Equatable {
    /// Journal records folded (after the checkpoint, when there was one).
    public var recordsFolded: Int
    /// The checkpoint recovery started from (0: none).
    public var checkpointSeq: Int
    public var asOfSeq: Int
    public var orders: Int
    public var lastIteration: Int
    /// Iterations that got an `iteration_aborted`.
    public var aborted: [String]
    public var unreadable: Int
    public var seconds: Double
    /// The trading state the journal's `trading_state_changed` events left (nil: none), for
    /// ``TradingStateController/restore(recovered:)`` when no state document was saved.
    public var tradingState: TradingStateSnapshot? = nil
}

/// Rebuilds the pipeline's state from the journal at start (PROTOCOL §10): the broker's
/// books, the day's risk budget, iteration numbers, the loop's counters and the audit
/// summaries, through ``JournalFold``; then ends every iteration the journal left open with
/// one `iteration_aborted`.
///
/// The journal is the truth: a checkpoint (state document ``checkpointKey``) only lets the
/// fold start later, and is written by ``checkpoint(_:startingCash:through:)`` before
/// retention removes the events it covers.
public enum PipelineRecovery {
    /// The journal state document holding the newest checkpoint.
    public static let checkpointKey = "book_checkpoint"

    /// The fold of the journal through `seq` (everything when nil), from the newest
    /// checkpoint at or below it.
    public static func fold(
        _ journal: any EventJournal, startingCash: Money, through seq: Int? = nil
    ) throws -> (fold: JournalFold, checkpointSeq: Int, folded: Int) {
        var fold = JournalFold(startingCash: startingCash)
        var checkpointSeq = 0
        if let bytes = try journal.loadState(checkpointKey) {
            let saved = try JournalFold(checkpoint: try JSONParser.parse(bytes))
            if seq.map({ saved.asOfSeq <= $0 }) ?? true {
                fold = saved
                checkpointSeq = saved.asOfSeq
            } else if let oldest = try journal.summary().oldestSeq, oldest > 1 {
                // Retention removed events the fold would need, and the checkpoint is past `seq`.
                throw ReplayError(
                    iterationID: "",
                    message:
                        "the journal no longer holds what came before seq \(seq ?? 0) (events before \(oldest) were removed)"
                )
            }
        }
        var folded = 0
        try journal.scan(afterSeq: fold.asOfSeq) { record in
            if let seq, record.seq > seq { return false }
            fold.apply(record)
            folded += 1
            return true
        }
        return (fold, checkpointSeq, folded)
    }

    /// The last close per symbol in the newest `data_ready` events (at most `lookback` of them,
    /// newest first), for marking recovered positions as the live broker last did.
    static func latestCloses(_ journal: any EventJournal, symbols: Set<String>, lookback: Int = 32) throws
        -> [String: Double]
    {
        var closes: [String: Double] = [:]
        guard !symbols.isEmpty else { return closes }
        let recent = try journal.read(
            JournalQuery(pattern: PipelineEvent.dataReady.rawValue, limit: lookback, newest: true))
        for record in recent.reversed() {
            guard let data = try? JSONParser.parse(record.data).objectValue else { continue }
            for symbol in symbols where closes[symbol] == nil {
                if let close = data[symbol]?["bars"]?.arrayValue?.last?["close"]?.doubleValue {
                    closes[symbol] = close
                }
            }
            if closes.count == symbols.count { break }
        }
        return closes
    }

    /// Saves a checkpoint covering every record through `seq`, so retention may remove them.
    public static func checkpoint(_ journal: any EventJournal, startingCash: Money, through seq: Int) throws {
        let (fold, _, _) = try Self.fold(journal, startingCash: startingCash, through: seq)
        try journal.saveState(checkpointKey, JSONWriter.encode(fold.checkpointJSON))
    }

    /// Recovers `agents`, `orchestrator` and `loop` from `journal`, then publishes one
    /// `iteration_aborted` per open iteration on `bus`. Call before serving anything.
    public static func recover(
        journal: any EventJournal, bus: EventBus, agents: TradingAgents, orchestrator: any Orchestrator,
        loop: PipelineLoop, startingCash: Money, logger: Logger
    ) async throws -> RecoveryReport {
        let started = ContinuousClock.now
        let (fold, checkpointSeq, folded) = try Self.fold(journal, startingCash: startingCash)
        let closes = try latestCloses(journal, symbols: Set(fold.ledger.positions.keys))
        let aborted = await restore(
            fold, closes: closes, bus: bus, agents: agents, orchestrator: orchestrator, loop: loop, logger: logger)
        let elapsed = ContinuousClock.now - started
        let report = RecoveryReport(
            recordsFolded: folded, checkpointSeq: checkpointSeq, asOfSeq: fold.asOfSeq, orders: fold.ledger.orders,
            lastIteration: fold.lastIteration, aborted: aborted, unreadable: fold.unreadable,
            seconds: elapsed.inSeconds, tradingState: fold.tradingState)
        logger.info(
            "recovery.done",
            metadata: [
                "recovery.records": "\(report.recordsFolded)", "recovery.checkpoint_seq": "\(checkpointSeq)",
                "recovery.as_of_seq": "\(report.asOfSeq)", "recovery.orders": "\(report.orders)",
                "recovery.last_iteration": "\(report.lastIteration)", "recovery.aborted": "\(aborted.count)",
                "recovery.unreadable": "\(report.unreadable)", "recovery.seconds": "\(report.seconds)",
            ])
        return report
    }
    /// Puts a fold into the agents: the broker's books marked at `closes`, the risk budget,
    /// the audit log, the iteration numbering and the loop's counts; publishes
    /// `iteration_aborted` for every iteration the fold found open. Returns their ids.
    /// (`recover` does this at start; a cluster's new leader at a takeover.)
    public static func restore(
        _ fold: JournalFold, closes: [String: Double], bus: EventBus, agents: TradingAgents,
        orchestrator: any Orchestrator, loop: PipelineLoop, logger: Logger
    ) async -> [String] {
        await agents.broker.restore(fold.ledger)
        await agents.broker.mark(closes)
        agents.riskBudget.restore(day: fold.budget.day, committed: fold.budget.committed)
        agents.auditLog.removeAll()
        for summary in fold.summaries { agents.auditLog.append(summary) }
        orchestrator.continueNumbering(after: fold.lastIteration)
        // Aborted loop iterations count, as the next fold will count them.
        let abortedLoopIterations = fold.openIterations.filter(\.loop).count
        await loop.restore(
            iterations: fold.loopIterations + abortedLoopIterations, lastIteration: fold.lastLoopIteration)
        var aborted: [String] = []
        for iteration in fold.openIterations {
            let data: JSONValue = [
                "iteration_id": JSONValue(iteration.id), "iteration": JSONValue(iteration.number),
                "last_stage": JSONValue(iteration.lastStage.rawValue), "reason": "daemon stopped",
            ]
            var metadata: JSONObject = [
                "iteration": JSONValue(iteration.number), "iteration_id": JSONValue(iteration.id),
            ]
            if iteration.dryRun { metadata["dry_run"] = true }
            if iteration.loop { metadata["loop"] = true }
            await bus.publish(JournalFold.abortedType, payload: data, metadata: metadata)
            aborted.append(iteration.id)
            logger.warning(
                "recovery.iteration_aborted",
                metadata: [
                    "iteration": "\(iteration.number)", "iteration.id": "\(iteration.id)",
                    "stage": "\(iteration.lastStage.rawValue)",
                ])
        }
        return aborted
    }

    /// Notes, from a `data_ready` record, the last close of each symbol in `symbols` it has
    /// (a fold of a record stream keeps the newest: apply records oldest first).
    public static func noteCloses(
        _ record: JournalRecord, symbols: Set<String>? = nil, into closes: inout [String: Double]
    ) {
        guard record.type == PipelineEvent.dataReady.rawValue,
            let data = try? JSONParser.parse(record.data).objectValue
        else { return }
        for member in data.members where symbols?.contains(member.key) ?? true {
            if let close = member.value["bars"]?.arrayValue?.last?["close"]?.doubleValue { closes[member.key] = close }
        }
    }
}
