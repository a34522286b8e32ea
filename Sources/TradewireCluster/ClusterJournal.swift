import Foundation
import Logging
import PostgresNIO
import TradewireBus

/// An event on its way into the shared journal: everything but the seq, which the
/// database assigns when the batch commits.
public struct EventDraft: Sendable, Equatable {
    public var type: String
    public var timestamp: Date
    /// Compact JSON of the event's data.
    public var data: [UInt8]
    /// Compact JSON of the event's metadata (an object).
    public var metadata: [UInt8]
    public var dataType: String

    public init(type: String, timestamp: Date, data: [UInt8], metadata: [UInt8] = Array("{}".utf8), dataType: String) {
        self.type = type
        self.timestamp = timestamp
        self.data = data
        self.metadata = metadata
        self.dataType = dataType
    }
}

/// What an append got: the first of its consecutive seqs.
public struct AppendReceipt: Sendable, Equatable {
    public var firstSeq: Int
    public var count: Int
    /// True when the batch key had been applied before (a retry): the seqs are the first
    /// append's, and nothing new was stored.
    public var replayed: Bool

    public init(firstSeq: Int, count: Int, replayed: Bool) {
        self.firstSeq = firstSeq
        self.count = count
        self.replayed = replayed
    }

    public var seqs: ClosedRange<Int> { firstSeq...(firstSeq + count - 1) }
}

/// A record of the shared journal, with the node that accepted it.
public struct ClusterRecord: Sendable, Equatable {
    public var record: JournalRecord
    public var node: String
    /// The leader's epoch for a leader append, nil for a client publish.
    public var epoch: Int?
    /// The batch it was appended in, and its place there (-1 once the batch key was pruned).
    public var batchKey: String = ""
    public var indexInBatch: Int = -1
}

/// The shared journal on PostgreSQL (PROTOCOL §13): one seq space for every node.
///
/// The append is one call of `tw_append`, which takes a transaction-scoped advisory lock,
/// reads `max(seq)`, inserts the batch and notifies `tw_events`, so seqs commit in order and
/// a reader that follows `seq` never skips a row that commits later. Batches carry a key:
/// a retry after a lost connection returns the first append's seqs. A leader's append also
/// carries its epoch, refused (`.fenced`) once the lease moved on.
public final class ClusterJournal: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String
    private let logger: Logger

    /// Largest batch per append (bounded: a statement's arrays travel in one message).
    public static let maximumBatch = 1000

    public init(database: ClusterDatabase, nodeID: String, logger: Logger) {
        self.database = database
        self.nodeID = nodeID
        self.logger = logger
    }

    /// Creates or upgrades the schema.
    public func migrate() async throws(ClusterError) {
        try await ClusterSchema.migrate(database)
    }

    /// Appends a batch in one transaction and returns its seqs. Retrying with the same
    /// `batchKey` after any failure is safe: it is applied at most once.
    public func append(_ drafts: [EventDraft], batchKey: String, epoch: Int? = nil) async throws(ClusterError)
        -> AppendReceipt
    {
        guard !drafts.isEmpty, drafts.count <= Self.maximumBatch else {
            throw ClusterError(.database, "append: a batch holds 1…\(Self.maximumBatch) events, not \(drafts.count)")
        }
        let types = drafts.map(\.type)
        let times = drafts.map { Int64(($0.timestamp.timeIntervalSince1970 * 1_000_000).rounded()) }
        let data = drafts.map { String(decoding: $0.data, as: UTF8.self) }
        let metadata = drafts.map { String(decoding: $0.metadata, as: UTF8.self) }
        let dataTypes = drafts.map(\.dataType)
        let node = nodeID
        let epoch64 = epoch.map(Int64.init)
        let rows = try await database.query(
            """
            SELECT first_seq, count, replayed FROM tw_append(\(node), \(batchKey), \(epoch64), \(types), \(times), \
            \(data), \(metadata), \(dataTypes))
            """, "appending \(drafts.count) events")
        guard let row = rows.first else { throw ClusterError(.database, "append: tw_append returned nothing") }
        do {
            let (first, count, replayed) = try row.decode((Int, Int, Bool).self)
            return AppendReceipt(firstSeq: first, count: count, replayed: replayed)
        } catch {
            throw ClusterError(.database, "append: unexpected result (\(error))")
        }
    }

    /// The newest seq, 0 when empty.
    public func newestSeq() async throws(ClusterError) -> Int {
        let rows = try await database.query("SELECT coalesce(max(seq), 0) FROM tw_events", "reading the newest seq")
        return (try? rows.first?.decode(Int.self)) ?? 0
    }

    /// Records after `afterSeq`, oldest first, at most `limit`.
    public func read(after afterSeq: Int, limit: Int = 1000) async throws(ClusterError) -> [ClusterRecord] {
        let limit = max(1, min(limit, 10_000))
        let rows = try await database.query(
            """
            SELECT e.seq, e.event_type, e.ts_us, e.data, e.metadata, e.data_type, e.node_id, e.epoch, e.batch_key,
                coalesce(e.seq - b.first_seq, -1)
            FROM tw_events e LEFT JOIN tw_batches b ON b.node_id = e.node_id AND b.batch_key = e.batch_key
            WHERE e.seq > \(afterSeq) ORDER BY e.seq LIMIT \(limit)
            """, "reading events after seq \(afterSeq)")
        do {
            return try rows.map { row in
                let (seq, type, micros, data, metadata, dataType, node, epoch, key, index) = try row.decode(
                    (Int, String, Int64, String, String, String, String, Int?, String, Int).self)
                return ClusterRecord(
                    record: Self.record(seq, type, micros, data, metadata, dataType), node: node, epoch: epoch,
                    batchKey: key, indexInBatch: index)
            }
        } catch {
            throw ClusterError(.database, "reading events: unexpected row (\(error))")
        }
    }

    /// The oldest and newest seq the journal keeps (nil when it is empty).
    public func bounds() async throws(ClusterError) -> (oldest: Int?, newest: Int?) {
        let rows = try await database.query("SELECT min(seq), max(seq) FROM tw_events", "reading the journal's bounds")
        guard let row = rows.first, let bounds = try? row.decode((Int?, Int?).self) else { return (nil, nil) }
        return (bounds.0, bounds.1)
    }

    /// Most records one ``read(_:)`` returns.
    public static let maximumRead = 100_000

    /// Records matching `query` (PROTOCOL §3 patterns), oldest first, at most ``maximumRead``.
    public func read(_ query: JournalQuery) async throws(ClusterError) -> [ClusterRecord] {
        let after = query.afterSeq ?? 0
        let limit = max(1, min(query.limit ?? Self.maximumRead, Self.maximumRead))
        let like = query.pattern.map(Self.likePattern) ?? "%"
        let rows: [PostgresRow]
        if query.newest {
            rows = try await database.query(
                """
                SELECT * FROM (SELECT seq, event_type, ts_us, data, metadata, data_type, node_id, epoch FROM tw_events
                WHERE seq > \(after) AND event_type LIKE \(like) ORDER BY seq DESC LIMIT \(limit)) newest ORDER BY seq
                """, "reading history")
        } else {
            rows = try await database.query(
                """
                SELECT seq, event_type, ts_us, data, metadata, data_type, node_id, epoch FROM tw_events
                WHERE seq > \(after) AND event_type LIKE \(like) ORDER BY seq LIMIT \(limit)
                """, "reading history")
        }
        return try Self.records(rows)
    }

    /// The seq retention keeps from: at most `maxEvents` of the newest, none older than
    /// `cutoff` (the newest always stays); nil when nothing is to go.
    public func pruneBoundary(keepingAtMost maxEvents: Int, olderThan cutoff: Date?) async throws(ClusterError)
        -> Int?
    {
        let (oldest, newest) = try await bounds()
        guard let oldest, let newest else { return nil }
        var boundary = newest - max(maxEvents, 1) + 1
        if let cutoff {
            let micros = Int64((cutoff.timeIntervalSince1970 * 1_000_000).rounded())
            // In seq order (the primary key): the walk stops at the first young record.
            let rows = try await database.query(
                "SELECT seq FROM tw_events WHERE ts_us >= \(micros) ORDER BY seq LIMIT 1",
                "finding the retention cutoff",
                timeout: .seconds(30))
            let firstYoung = (try? rows.first?.decode(Int.self)) ?? newest
            boundary = max(boundary, min(firstYoung, newest))
        }
        return boundary > oldest ? boundary : nil
    }

    /// Removes records below `boundary` (never the newest), oldest first, in batches of
    /// `batchSize` rows, each its own short transaction (no huge DELETE holding locks and
    /// bloating the table); returns how many went.
    @discardableResult
    public func prune(below boundary: Int, batchSize: Int = 5000) async throws(ClusterError) -> Int {
        let newest = try await newestSeq()
        let limit = min(boundary, newest)
        var removed = 0
        while true {
            let rows = try await database.query(
                """
                WITH gone AS (DELETE FROM tw_events WHERE seq IN
                    (SELECT seq FROM tw_events WHERE seq < \(limit) ORDER BY seq LIMIT \(batchSize)) RETURNING seq)
                SELECT count(*) FROM gone
                """, "pruning events below \(limit)", timeout: .seconds(30))
            let count = (try? rows.first?.decode(Int.self)) ?? 0
            removed += count
            if count < batchSize { break }
        }
        // A batch whose events are gone can no longer be retried meaningfully.
        _ = try await database.query(
            "DELETE FROM tw_batches WHERE first_seq + count <= \(limit)", "pruning batch keys", timeout: .seconds(30))
        if removed > 0 { logger.info("cluster.journal.pruned", metadata: ["events.removed": "\(removed)"]) }
        return removed
    }

    /// A named state document (nil when never saved).
    public func loadState(_ key: String) async throws(ClusterError) -> [UInt8]? {
        let rows = try await database.query("SELECT value FROM tw_state WHERE key = \(key)", "loading state '\(key)'")
        guard let value = try? rows.first?.decode(String.self) else { return nil }
        return Array(value.utf8)
    }

    /// Saves (replaces) a named state document.
    public func saveState(_ key: String, _ value: [UInt8]) async throws(ClusterError) {
        let text = String(decoding: value, as: UTF8.self)
        _ = try await database.query(
            """
            INSERT INTO tw_state (key, value, updated_at) VALUES (\(key), \(text), now())
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, "saving state '\(key)'")
    }

    /// Turns a PROTOCOL §3 pattern (`*` any run, `?` one character) into a LIKE pattern.
    static func likePattern(_ pattern: String) -> String {
        var like = ""
        for character in pattern {
            switch character {
            case "*": like.append("%")
            case "?": like.append("_")
            case "%", "_", "\\": like.append("\\\(character)")
            default: like.append(character)
            }
        }
        return like
    }

    static func record(
        _ seq: Int, _ type: String, _ micros: Int64, _ data: String, _ metadata: String, _ dataType: String
    ) -> JournalRecord {
        JournalRecord(
            seq: seq, type: type, timestamp: Date(timeIntervalSince1970: Double(micros) / 1_000_000),
            data: Array(data.utf8), metadata: Array(metadata.utf8), dataType: dataType, subscriberCount: 0)
    }

    private static func records(_ rows: [PostgresRow]) throws(ClusterError) -> [ClusterRecord] {
        do {
            return try rows.map { row in
                let (seq, type, micros, data, metadata, dataType, node, epoch) = try row.decode(
                    (Int, String, Int64, String, String, String, String, Int?).self)
                return ClusterRecord(
                    record: record(seq, type, micros, data, metadata, dataType), node: node, epoch: epoch)
            }
        } catch {
            throw ClusterError(.database, "reading events: unexpected row (\(error))")
        }
    }
}
