import Foundation
import TradewireJSON

/// One event as a journal keeps it: its seq, type, time, and the compact JSON of its data
/// and metadata, plus what history reports with it.
public struct JournalRecord: Sendable, Equatable {
    public var seq: Int
    public var type: String
    public var timestamp: Date
    /// Compact JSON of the event's `data`.
    public var data: [UInt8]
    /// Compact JSON of the event's `metadata` (an object).
    public var metadata: [UInt8]
    /// `data`'s JSON type name (`object`, `array`, `string`, `number`, `boolean`, `null`).
    public var dataType: String
    /// Client subscriptions that matched when the event was published.
    public var subscriberCount: Int

    public init(
        seq: Int, type: String, timestamp: Date, data: [UInt8], metadata: [UInt8], dataType: String,
        subscriberCount: Int
    ) {
        self.seq = seq
        self.type = type
        self.timestamp = timestamp
        self.data = data
        self.metadata = metadata
        self.dataType = dataType
        self.subscriberCount = subscriberCount
    }
}

/// Which records to read.
public struct JournalQuery: Sendable, Equatable {
    /// Only records with a greater seq.
    public var afterSeq: Int?
    /// Only records whose type matches this pattern (`*` any run, `?` one character).
    public var pattern: String?
    /// At most this many records.
    public var limit: Int?
    /// With a limit: the newest matching records (still returned oldest first) instead of
    /// the oldest.
    public var newest: Bool

    public init(afterSeq: Int? = nil, pattern: String? = nil, limit: Int? = nil, newest: Bool = false) {
        self.afterSeq = afterSeq
        self.pattern = pattern
        self.limit = limit
        self.newest = newest
    }
}

/// How hard a commit presses the data to disk.
public enum JournalSync: String, Sendable, CaseIterable {
    /// Nothing acknowledged is lost when the daemon crashes or is killed (SQLite WAL with
    /// `synchronous=NORMAL`).
    case normal
    /// Also nothing when the machine loses power (`synchronous=FULL`).
    case full
}

/// What `get_status.journal` reports.
public struct JournalSummary: Sendable, Equatable {
    /// Where the journal lives (a database file path, a URL without credentials, …).
    public var location: String
    /// Fixed for a journal's life: a client that sees the same id again may resume with
    /// `since_seq`; a different one means a new seq space.
    public var journalID: String
    public var events: Int
    public var oldestSeq: Int?
    public var newestSeq: Int?
    /// Bytes on disk (database and its write-ahead log).
    public var bytes: Int
    public var sync: JournalSync

    public init(
        location: String, journalID: String, events: Int, oldestSeq: Int?, newestSeq: Int?, bytes: Int,
        sync: JournalSync
    ) {
        self.location = location
        self.journalID = journalID
        self.events = events
        self.oldestSeq = oldestSeq
        self.newestSeq = newestSeq
        self.bytes = bytes
        self.sync = sync
    }
}

/// A journal failure, with a message for the operator.
public struct JournalError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Another process holds the journal (a second daemon on the same data dir).
        case inUse
        /// The location cannot be used (permissions, not a directory, owned by another user…).
        case unusable
        /// The stored data is not what this version expects (a newer schema, corruption).
        case incompatible
        /// An append would not continue the seq (a gap or a repeat).
        case seqOutOfOrder
        /// Reading or writing failed.
        case io
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Where the bus keeps every event before anyone sees it (capture before dispatch), so a
/// crash or a restart loses nothing that was acknowledged.
///
/// The bus knows only this protocol: the embedded implementation is SQLite (the
/// TradewireJournal target); a PostgreSQL one can follow without touching the bus.
/// Implementations are called from one writer at a time for `append` and may be read
/// concurrently.
public protocol EventJournal: Sendable {
    /// This journal's identity.
    var journalID: String { get }

    /// The newest seq stored, 0 when empty.
    func newestSeq() throws(JournalError) -> Int

    /// Stores `records` in one transaction. Their seqs are consecutive and start right after
    /// ``newestSeq()`` (else `.seqOutOfOrder`, and nothing is stored). When this returns,
    /// the records survive what ``JournalSync`` promises.
    func append(_ records: [JournalRecord]) throws(JournalError)

    /// Stores `events` as ``append(_:)`` stores their records (data and metadata from the
    /// events' encoding, `subscriberCount` 0). The default builds the records; a journal may
    /// write the bytes where they lie instead (the bus appends every batch this way).
    func append(events: [Event]) throws(JournalError)

    /// Records matching `query`, oldest first.
    func read(_ query: JournalQuery) throws(JournalError) -> [JournalRecord]

    /// The first seq that retention keeps: every record below it is beyond `maxEvents`
    /// (at least 1 is kept) or older than `cutoff`. Nil when nothing would be removed. The
    /// newest record is always kept, so seq continues after a restart.
    func pruneBoundary(keepingAtMost maxEvents: Int, olderThan cutoff: Date?) throws(JournalError) -> Int?

    /// Removes every record whose seq is below `boundary` (never the newest), oldest first,
    /// in bounded transactions; returns how many went.
    @discardableResult
    func prune(below boundary: Int) throws(JournalError) -> Int

    /// Stores records that keep their seqs and times (an import into an empty journal):
    /// consecutive, starting above ``newestSeq()`` (a gap before the first is allowed only
    /// when the journal is empty). Else `.seqOutOfOrder`, and nothing is stored.
    func restore(_ records: [JournalRecord]) throws(JournalError)

    /// A named state document kept beside the events (book checkpoints, loop settings,
    /// durable stage groups): compact JSON bytes, nil when never saved.
    func loadState(_ key: String) throws(JournalError) -> [UInt8]?

    /// Saves (replaces) a named state document, durably as ``JournalSync`` promises.
    func saveState(_ key: String, _ value: [UInt8]) throws(JournalError)

    /// The records of `types` whose `metadata.iteration_id` is `iterationID`, oldest first
    /// (replay finds a recorded iteration with it).
    func records(ofIteration iterationID: String, types: [String]) throws(JournalError) -> [JournalRecord]

    /// Counts, seq range and size.
    func summary() throws(JournalError) -> JournalSummary
}

extension EventJournal {
    public func append(events: [Event]) throws(JournalError) {
        try append(events.map(JournalRecord.init(event:)))
    }

    /// Removes the oldest records beyond `maxEvents`, and those older than `cutoff`;
    /// returns how many went.
    @discardableResult
    public func prune(keepingAtMost maxEvents: Int, olderThan cutoff: Date?) throws(JournalError) -> Int {
        guard let boundary = try pruneBoundary(keepingAtMost: maxEvents, olderThan: cutoff) else { return 0 }
        return try prune(below: boundary)
    }

    /// Every record with seq above `afterSeq`, oldest first, read in pages of `pageSize`
    /// (memory stays bounded however long the journal): `body` returns false to stop.
    public func scan(
        afterSeq: Int = 0, pattern: String? = nil, pageSize: Int = 4096,
        _ body: (JournalRecord) throws -> Bool
    ) throws -> Void {
        var cursor = afterSeq
        while true {
            let page = try read(JournalQuery(afterSeq: cursor, pattern: pattern, limit: max(1, pageSize)))
            for record in page {
                guard try body(record) else { return }
                cursor = record.seq
            }
            if page.count < max(1, pageSize) { return }
        }
    }
}

/// How long the journal keeps events: `--retain-events` and `--retain-days`.
public struct JournalRetentionPolicy: Sendable, Equatable {
    public var maximumEvents: Int
    public var maximumDays: Int

    public init(
        maximumEvents: Int = JournalRetention.defaultEvents, maximumDays: Int = JournalRetention.defaultDays
    ) {
        self.maximumEvents = maximumEvents
        self.maximumDays = maximumDays
    }
}

/// How long the journal keeps events (PROTOCOL §10).
public enum JournalRetention {
    /// `--retain-events` default.
    public static let defaultEvents = 10_000_000
    /// `--retain-days` default.
    public static let defaultDays = 30
}

extension JournalRecord {
    /// The history record object of PROTOCOL §3: `{"seq", "event_type", "timestamp",
    /// "data"?, "metadata", "subscriber_count", "data_type", "node"?}`, as the in-memory
    /// history writes it (`node`: the cluster node that accepted it).
    public func encodeJSON(to writer: inout JSONWriter, includeData: Bool, subscriberCount: Int, node: String? = nil) {
        writer.beginObject()
        writer.field("seq", seq)
        writer.field("event_type", type)
        writer.key("timestamp")
        writer.writeRaw(RFC3339Text(timestamp))
        if includeData {
            writer.key("data")
            writer.writeRaw(data)
        }
        writer.key("metadata")
        writer.writeRaw(metadata)
        writer.field("subscriber_count", subscriberCount)
        writer.field("data_type", dataType)
        if let node { writer.field("node", node) }
        writer.endObject()
    }
}

/// An event's data kept as the JSON bytes a journal returned.
public struct RecordedPayload: EventPayload {
    public let bytes: [UInt8]
    public let jsonTypeName: String

    public init(bytes: [UInt8], jsonTypeName: String) {
        self.bytes = bytes
        self.jsonTypeName = jsonTypeName
    }

    public var estimatedJSONBytes: Int { bytes.count }
    public func encodeJSON(to writer: inout JSONWriter) { writer.writeRaw(bytes) }
}

extension JournalRecord {
    /// The record a journal keeps of `event`: its data and metadata as the event's encoding
    /// writes them, no subscribers counted.
    public init(event: Event) {
        self.init(
            seq: event.seq, type: event.type, timestamp: event.timestamp, data: Array(event.dataJSON),
            metadata: Array(event.metadataJSON), dataType: event.payload.jsonTypeName, subscriberCount: 0)
    }
}

extension Event {
    /// The event a journal record holds (to replay it to a subscriber).
    public convenience init(record: JournalRecord) {
        let metadata: JSONObject
        if case .object(let object)? = try? JSONParser.parse(record.metadata) {
            metadata = object
        } else {
            metadata = [:]
        }
        self.init(
            seq: record.seq, type: record.type, timestamp: record.timestamp,
            timestampText: RFC3339Text(record.timestamp),
            payload: RecordedPayload(bytes: record.data, jsonTypeName: record.dataType), metadata: metadata)
    }
}
