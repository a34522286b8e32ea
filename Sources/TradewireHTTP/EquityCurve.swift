import Foundation
import Synchronization
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireServer
import TradewireTrading

/// The paper account's equity after each fill, for the dashboard's curve (`/api/equity`).
///
/// The fills are the `executed_ready` events, booked through ``JournalFold`` (the broker's
/// own ledger code, as recovery books them; dry runs book nothing). With a journal the curve
/// catches up from it on each read, starting at the book checkpoint when retention left one;
/// with `--ephemeral` an in-process subscription books each fill as it is published. The last
/// point is always the live books' equity (the `get_portfolio` figure).
///
/// At most ``maximumKept`` points are kept: past that every other one is dropped (the first
/// and the last stay), so a long history keeps its shape in bounded memory.
final class EquityCurve: Sendable {
    static let maximumKept = 4096
    /// Points one answer may hold.
    static let maximumPoints = 1000
    static let defaultPoints = 300
    /// Records one catch-up reads from the journal (the next read goes on).
    static let catchUpLimit = 100_000

    struct Point: Sendable, Equatable {
        var seq: Int
        var time: Date
        var equity: Double
    }

    private struct State {
        var fold: JournalFold?
        var points: [Point] = []
        var fills = 0
    }

    private let state = Mutex(State())
    private let daemon: Daemon
    private let startingCash: Money

    /// Without a journal, subscribes to `executed_ready` at once (call it before the first
    /// iteration can run).
    init(daemon: Daemon) {
        self.daemon = daemon
        self.startingCash = Money(dollars: daemon.pipeline.agents.risk.config.startingCash)
        if daemon.pipeline.journal == nil, let pattern = try? EventPattern(PipelineEvent.executedReady.rawValue) {
            daemon.bus.subscribe(
                pattern, owner: .inProcess("http.equity_curve"),
                handler: .sync { [weak self] event in self?.book([Self.record(event)]) })
        }
    }

    /// `{"points": [{"t", "seq", "equity"}…], "fills", "starting_cash", "equity", "as_of_seq"}`:
    /// at most `points` points, evenly picked, the live equity last.
    func snapshot(points limit: Int) async -> JSONValue {
        if let journal = daemon.pipeline.journal { catchUp(journal) }
        let portfolio = await daemon.portfolio()
        let now = portfolio["equity"]?.doubleValue ?? 0
        let (kept, fills) = state.withLock { ($0.points, $0.fills) }
        var points = kept
        let startedAt = Date().addingTimeInterval(-daemon.uptimeSeconds)
        if points.isEmpty { points.append(Point(seq: 0, time: startedAt, equity: now)) }
        let asOfSeq = portfolio["as_of_seq"]?.intValue ?? daemon.bus.lastSeq
        points.append(Point(seq: asOfSeq, time: Date(), equity: now))
        let picked = Self.pick(points, limit: max(2, limit))
        return [
            "points": .array(
                picked.map { point in
                    [
                        "t": JSONValue(RFC3339.string(from: point.time)), "seq": JSONValue(point.seq),
                        "equity": JSONValue(point.equity),
                    ]
                }),
            "fills": JSONValue(fills), "starting_cash": JSONValue(startingCash.dollars), "equity": JSONValue(now),
            "as_of_seq": JSONValue(asOfSeq),
        ]
    }

    /// Books the journal's fills after the last one folded.
    private func catchUp(_ journal: any EventJournal) {
        let after: Int? = state.withLock { $0.fold?.asOfSeq }
        var fold: JournalFold?
        var from = after ?? 0
        if after == nil {
            // The first read starts at the book checkpoint when there is one.
            if let bytes = try? journal.loadState(PipelineRecovery.checkpointKey),
                let json = try? JSONParser.parse(bytes),
                let saved = try? JournalFold(checkpoint: json, summaryCapacity: 1)
            {
                fold = saved
                from = saved.asOfSeq
            }
        }
        let records =
            (try? journal.read(
                JournalQuery(afterSeq: from, pattern: PipelineEvent.executedReady.rawValue, limit: Self.catchUpLimit)))
            ?? []
        state.withLock { state in
            if state.fold == nil { state.fold = fold ?? JournalFold(startingCash: startingCash, summaryCapacity: 1) }
        }
        book(records)
    }

    /// Folds `records` (in seq order; those already folded are skipped) and adds a point
    /// after each that booked a fill.
    private func book(_ records: [JournalRecord]) {
        state.withLock { state in
            var fold = state.fold ?? JournalFold(startingCash: startingCash, summaryCapacity: 1)
            for record in records where record.seq > fold.asOfSeq {
                let before = fold.ledger
                fold.apply(record)
                // Only fills matter here: the iterations the fold opens are never closed by it.
                fold.open.removeAll()
                guard fold.ledger.orders != before.orders else { continue }
                if state.points.isEmpty {
                    state.points.append(
                        Point(seq: record.seq - 1, time: record.timestamp, equity: before.equity.dollars))
                }
                state.fills += fold.ledger.orders - before.orders
                state.points.append(Point(seq: record.seq, time: record.timestamp, equity: fold.ledger.equity.dollars))
                if state.points.count > Self.maximumKept { state.points = Self.halved(state.points) }
            }
            state.fold = fold
        }
    }

    /// Every other point, the first and the last kept.
    static func halved(_ points: [Point]) -> [Point] {
        guard points.count > 2 else { return points }
        var kept = stride(from: 0, to: points.count - 1, by: 2).map { points[$0] }
        kept.append(points[points.count - 1])
        return kept
    }

    /// At most `limit` points, evenly spaced, the first and the last included.
    static func pick(_ points: [Point], limit: Int) -> [Point] {
        guard points.count > limit, limit >= 2 else { return points }
        let step = Double(points.count - 1) / Double(limit - 1)
        return (0..<limit).map { points[Int((Double($0) * step).rounded())] }
    }

    /// A live event as the journal would record it.
    private static func record(_ event: Event) -> JournalRecord {
        JournalRecord(
            seq: event.seq, type: event.type, timestamp: event.timestamp, data: Array(event.dataJSON),
            metadata: Array(event.metadataJSON), dataType: event.payload.jsonTypeName, subscriberCount: 0)
    }
}
