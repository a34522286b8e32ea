import Foundation
import GRDB
import GRDBSQLite
import Logging
import Synchronization
import TradewireBus
import TradewireJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The SQLite event journal (PROTOCOL §10): ``EventJournal`` on a WAL-mode database,
/// `DIR/tradewire.db`, in the daemon's data directory, through GRDB.
///
/// Opening checks (or creates, 0700) the data directory, takes its exclusive lock
/// (`DIR/lock`, `flock`, released by the kernel if the daemon dies), opens a
/// `DatabasePool` (one writer, concurrent readers: a read never waits for a commit) and
/// runs the schema migrations (``JournalSchema``).
///
/// Invariants this type keeps, which the rest of the daemon may rely on:
/// - the stored seqs are one contiguous run: appends continue from the newest, and
///   pruning removes a prefix (oldest first);
/// - pruning never removes the newest record, so after a restart seq continues from it
///   even when every record is older than the retention;
/// - the newest seq is kept in memory after open, so an append costs no extra query.
///
/// Timestamps are stored as whole microseconds since 1970 (the precision of the protocol's
/// RFC 3339 times; the bus stamps events at that precision), so a record's time reads back
/// exactly as its subscribers saw it.
public final class SQLiteJournal: EventJournal {
    public let journalID: String
    /// The data directory, absolute.
    public let directory: String
    /// `DIR/tradewire.db`.
    public let databasePath: String
    public let sync: JournalSync

    private let logger: Logger
    /// The database and the directory lock, until ``close()``.
    let state: Mutex<State>
    /// The newest stored seq; held across an append's transaction, so appends are serial.
    private let writer: Mutex<Int>

    struct State {
        var pool: DatabasePool?
        var lockDescriptor: Int32?
    }

    private static let insertSQL = """
        INSERT INTO events(seq, type, ts, data, metadata, data_type, subscribers)
        VALUES (?, ?, ?, COALESCE(?, X''), COALESCE(?, X''), ?, ?)
        """
    private static let selectSQL = "SELECT seq, type, ts, data, metadata, data_type, subscribers FROM events"
    /// Rows one prune transaction deletes at most, so appends interleave with a long prune.
    private static let pruneChunk = 10_000

    init(
        journalID: String, directory: String, databasePath: String, sync: JournalSync, newestSeq: Int,
        pool: DatabasePool, lockDescriptor: Int32, logger: Logger
    ) {
        self.journalID = journalID
        self.directory = directory
        self.databasePath = databasePath
        self.sync = sync
        self.logger = logger
        self.state = Mutex(State(pool: pool, lockDescriptor: lockDescriptor))
        self.writer = Mutex(newestSeq)
    }

    deinit { close() }

    /// Opens (creating if needed) the journal in `directory`.
    ///
    /// - Throws: `.unusable` when the directory breaks the rules of ``DataDirectory``,
    ///   `.inUse` when another process holds its lock, `.incompatible` when the database is
    ///   not a journal this version can read, `.io` when SQLite fails.
    public static func open(directory: String, sync: JournalSync, logger: Logger) throws(JournalError)
        -> SQLiteJournal
    {
        let directory = try DataDirectory.normalize(directory)
        try DataDirectory.prepare(directory)
        let lockDescriptor = try DirectoryLock.acquire(directory: directory)
        let databasePath = directory + "/tradewire.db"
        var pool: DatabasePool?
        do throws(JournalError) {
            let opened = try openPool(path: databasePath, sync: sync)
            pool = opened
            let (journalID, newestSeq) = try database(databasePath) { () throws -> (String?, Int) in
                try opened.read { db in try JournalSchema.checkCompatible(db, path: databasePath) }
                try JournalSchema.migrator.migrate(opened)
                return try opened.read { db in try identity(db) }
            }
            guard let journalID, !journalID.isEmpty else {
                throw JournalError(.incompatible, "journal \(databasePath) has no journal_id")
            }
            logger.info(
                "journal.opened",
                metadata: [
                    "journal.path": "\(databasePath)", "journal.id": "\(journalID)",
                    "journal.newest_seq": "\(newestSeq)", "journal.sync": "\(sync.rawValue)",
                ])
            return SQLiteJournal(
                journalID: journalID, directory: directory, databasePath: databasePath, sync: sync,
                newestSeq: newestSeq, pool: opened, lockDescriptor: lockDescriptor, logger: logger)
        } catch {
            if let pool { try? pool.close() }
            DirectoryLock.release(lockDescriptor)
            throw error
        }
    }

    private static func openPool(path: String, sync: JournalSync) throws(JournalError) -> DatabasePool {
        var configuration = Configuration()
        configuration.label = "tradewire.journal"
        configuration.busyMode = .timeout(5)
        configuration.foreignKeysEnabled = true
        configuration.maximumReaderCount = 4
        return try database(path) {
            // DatabasePool switches to WAL and sets synchronous=NORMAL on the writer; the
            // level is set again here so it is explicit, and raised for `.full`.
            let pool = try DatabasePool(path: path, configuration: configuration)
            do {
                try pool.writeWithoutTransaction { db in
                    switch sync {
                    case .normal: try db.execute(sql: "PRAGMA synchronous = NORMAL")
                    case .full: try db.execute(sql: "PRAGMA synchronous = FULL")
                    }
                }
            } catch {
                try? pool.close()
                throw error
            }
            return pool
        }
    }

    public func newestSeq() throws(JournalError) -> Int {
        _ = try pool()
        return writer.withLock { $0 }
    }

    public func append(_ records: [JournalRecord]) throws(JournalError) {
        try append(rows: records)
    }

    /// Writes each event's data and metadata from its encoding, where they lie: no copy.
    public func append(events: [Event]) throws(JournalError) {
        try append(rows: events)
    }

    private func append<Row: JournalRow>(rows: [Row]) throws(JournalError) {
        guard let first = rows.first else { return }
        try writer.withLock { (newest: inout Int) throws(JournalError) -> Void in
            guard first.seq == newest + 1 else {
                throw JournalError(
                    .seqOutOfOrder, "append of seq \(first.seq) does not continue the journal (newest is \(newest))")
            }
            try insert(rows)
            newest = rows[rows.count - 1].seq
        }
    }

    /// Inserts a batch whose seqs are consecutive, in one transaction.
    private func insert<Row: JournalRow>(_ rows: [Row]) throws(JournalError) {
        guard let first = rows.first else { return }
        for (offset, row) in rows.enumerated() where row.seq != first.seq + offset {
            throw JournalError(
                .seqOutOfOrder,
                "append of seq \(row.seq) does not follow seq \(rows[offset - 1].seq) in the same batch")
        }
        let pool = try pool()
        try Self.database(databasePath) {
            try pool.writeWithoutTransaction { db in
                // The transaction's own statements are prepared once, like the insert (GRDB's
                // `write` parses BEGIN and COMMIT again for every batch).
                let begin = try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION")
                let commit = try db.cachedStatement(sql: "COMMIT TRANSACTION")
                let statement = try db.cachedStatement(sql: Self.insertSQL)
                try begin.execute()
                do {
                    for row in rows { try Self.insert(row, with: statement.sqliteStatement, db) }
                    try commit.execute()
                } catch {
                    // Nothing of the batch stays: a failed commit SQLite did not roll back
                    // itself is rolled back here, and the error is the caller's to retry.
                    if sqlite3_get_autocommit(db.sqliteConnection) == 0 {
                        try? db.execute(sql: "ROLLBACK TRANSACTION")
                    }
                    throw error
                }
            }
        }
    }

    /// Binds and steps one row with SQLite's own calls: the append path's hot loop, where
    /// GRDB's per-value boxing (`StatementArguments`, `Data` copies) cost more than the
    /// insert itself. The values are bound without a copy (`SQLITE_STATIC`): every pointer
    /// stays valid until the row is stepped and the statement reset, which clears the bindings
    /// before the closures that lend the bytes return. A value SQLite cannot take (over 2 GiB)
    /// fails the append with `SQLITE_TOOBIG`.
    private static func insert<Row: JournalRow>(_ record: Row, with statement: SQLiteStatement, _ db: Database) throws {
        var type = record.type
        var dataType = record.dataType
        let code = type.withUTF8 { type in
            dataType.withUTF8 { dataType in
                record.withDataAndMetadata { data, metadata in
                    sqlite3_reset(statement)
                    defer {
                        sqlite3_reset(statement)
                        sqlite3_clear_bindings(statement)
                    }
                    var code = sqlite3_bind_int64(statement, 1, Int64(record.seq))
                    if code == SQLITE_OK { code = bindText(statement, 2, type) }
                    if code == SQLITE_OK { code = sqlite3_bind_int64(statement, 3, microseconds(record.timestamp)) }
                    if code == SQLITE_OK { code = bindBlob(statement, 4, data) }
                    if code == SQLITE_OK { code = bindBlob(statement, 5, metadata) }
                    if code == SQLITE_OK { code = bindText(statement, 6, dataType) }
                    if code == SQLITE_OK { code = sqlite3_bind_int64(statement, 7, Int64(record.subscriberCount)) }
                    return code == SQLITE_OK ? sqlite3_step(statement) : code
                }
            }
        }
        guard code == SQLITE_DONE else {
            // A failed step leaves its message on the connection; a refused bind has only its code.
            let message =
                code == SQLITE_TOOBIG
                ? "a value of seq \(record.seq) is too big for SQLite"
                : String(cString: sqlite3_errmsg(db.sqliteConnection))
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
        }
    }

    /// Binds UTF-8 text that outlives the statement's next reset (no copy).
    private static func bindText(_ statement: SQLiteStatement, _ index: Int32, _ text: UnsafeBufferPointer<UInt8>)
        -> Int32
    {
        // An empty buffer may have no address, and SQLite reads a null pointer as NULL, not "".
        guard let base = text.baseAddress, !text.isEmpty else {
            return sqlite3_bind_text(statement, index, "", 0, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        guard let count = Int32(exactly: text.count) else { return SQLITE_TOOBIG }
        return base.withMemoryRebound(to: CChar.self, capacity: text.count) {
            sqlite3_bind_text(statement, index, $0, count, nil)
        }
    }

    /// Binds bytes that outlive the statement's next reset (no copy).
    private static func bindBlob(_ statement: SQLiteStatement, _ index: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32
    {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_zeroblob(statement, index, 0) }
        guard let count = Int32(exactly: bytes.count) else { return SQLITE_TOOBIG }
        return sqlite3_bind_blob(statement, index, base, count, nil)
    }

    public func read(_ query: JournalQuery) throws(JournalError) -> [JournalRecord] {
        if let limit = query.limit, limit <= 0 { return [] }
        // The SQL is built from constant fragments only; every value is a bound argument.
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let afterSeq = query.afterSeq {
            conditions.append("seq > ?")
            arguments += [afterSeq]
        }
        if let pattern = query.pattern, pattern != "*" {
            conditions.append("type GLOB ?")
            arguments += [Self.glob(pattern)]
        }
        var sql = Self.selectSQL
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        let newestFirst = query.newest && query.limit != nil
        sql += newestFirst ? " ORDER BY seq DESC" : " ORDER BY seq ASC"
        if let limit = query.limit {
            sql += " LIMIT ?"
            arguments += [limit]
        }
        let pool = try pool()
        var records = try Self.database(databasePath) {
            try pool.read { db in
                let statement = try db.cachedStatement(sql: sql)
                var records: [JournalRecord] = []
                if let limit = query.limit { records.reserveCapacity(min(limit, 4096)) }
                let rows = try Row.fetchCursor(statement, arguments: arguments)
                while let row = try rows.next() {
                    records.append(try Self.record(row))
                }
                return records
            }
        }
        if newestFirst { records.reverse() }
        return records
    }

    /// The first seq to keep under `maxEvents` (at least 1) and `cutoff`; appends only add
    /// above it, so it stays valid while they run.
    public func pruneBoundary(keepingAtMost maxEvents: Int, olderThan cutoff: Date?) throws(JournalError) -> Int? {
        let pool = try pool()
        let keep = max(maxEvents, 1)
        return try Self.database(databasePath) {
            try pool.read { db -> Int? in
                let row = try Row.fetchOne(db, sql: "SELECT MIN(seq), MAX(seq) FROM events")
                guard let oldest: Int = row?[0], let newest: Int = row?[1] else { return nil }
                var boundary = newest - keep + 1
                if let cutoff {
                    // `+ts` keeps the ts index out: walking seq order stops at the first young
                    // record, so the cost is the number of old records.
                    let firstYoung = try Int.fetchOne(
                        db, sql: "SELECT seq FROM events WHERE +ts >= ? ORDER BY seq LIMIT 1",
                        arguments: [Self.microseconds(cutoff)])
                    boundary = max(boundary, min(firstYoung ?? newest, newest))
                }
                return boundary > oldest ? boundary : nil
            }
        }
    }

    /// Deletes in transactions of at most ``pruneChunk`` rows, so appends are not held up
    /// for long; the newest record always stays.
    @discardableResult
    public func prune(below boundary: Int) throws(JournalError) -> Int {
        let pool = try pool()
        let removed = try Self.database(databasePath) { () throws -> Int in
            var removed = 0
            while true {
                // At most a chunk per transaction; stops once nothing is left below the boundary.
                let changes = try pool.write { db -> Int in
                    try db.execute(
                        sql: """
                            DELETE FROM events WHERE seq < MIN(?, (SELECT MIN(seq) FROM events) + ?,
                                (SELECT MAX(seq) FROM events))
                            """,
                        arguments: [boundary, Self.pruneChunk])
                    return db.changesCount
                }
                removed += changes
                if changes == 0 { break }
            }
            return removed
        }
        if removed > 0 {
            logger.debug(
                "journal.pruned", metadata: ["journal.path": "\(databasePath)", "journal.removed": "\(removed)"])
        }
        return removed
    }

    public func restore(_ records: [JournalRecord]) throws(JournalError) {
        guard let first = records.first else { return }
        try writer.withLock { (newest: inout Int) throws(JournalError) -> Void in
            let empty = try summary().events == 0
            guard first.seq > newest, empty || first.seq == newest + 1 else {
                throw JournalError(
                    .seqOutOfOrder,
                    "restore of seq \(first.seq) does not continue the journal (newest is \(newest))")
            }
            try insert(records)
            newest = records[records.count - 1].seq
        }
    }

    /// Walks the `(type, seq)` index for each type, so the cost is the number of records of
    /// those types, not of the whole journal.
    public func records(ofIteration iterationID: String, types: [String]) throws(JournalError) -> [JournalRecord] {
        guard !types.isEmpty else { return [] }
        let pool = try pool()
        let placeholders = Array(repeating: "?", count: types.count).joined(separator: ", ")
        let sql =
            Self.selectSQL
            + " WHERE type IN (\(placeholders)) AND json_extract(CAST(metadata AS TEXT), '$.iteration_id') = ?"
            + " ORDER BY seq"
        var arguments = StatementArguments(types)
        arguments += [iterationID]
        return try Self.database(databasePath) {
            try pool.read { db in
                var records: [JournalRecord] = []
                let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
                while let row = try rows.next() { records.append(try Self.record(row)) }
                return records
            }
        }
    }

    public func loadState(_ key: String) throws(JournalError) -> [UInt8]? {
        let pool = try pool()
        return try Self.database(databasePath) {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT value FROM state WHERE key = ?", arguments: [key])
                    .map { row in try row.withUnsafeData(atIndex: 0) { $0.map { [UInt8]($0) } ?? [] } }
            }
        }
    }

    public func saveState(_ key: String, _ value: [UInt8]) throws(JournalError) {
        let pool = try pool()
        try Self.database(databasePath) {
            try pool.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [key, Data(value)])
            }
        }
    }

    /// Counts from the seq range (contiguous, see the type's invariants): O(1) however
    /// large the journal.
    public func summary() throws(JournalError) -> JournalSummary {
        let pool = try pool()
        let (oldest, newest) = try Self.database(databasePath) {
            try pool.read { db -> (Int?, Int?) in
                let row = try Row.fetchOne(db, sql: "SELECT MIN(seq), MAX(seq) FROM events")
                return (row?[0], row?[1])
            }
        }
        let events = oldest.flatMap { oldest in newest.map { $0 - oldest + 1 } } ?? 0
        let bytes = Self.fileSize(databasePath) + Self.fileSize(databasePath + "-wal")
        return JournalSummary(
            location: databasePath, journalID: journalID, events: events, oldestSeq: oldest, newestSeq: newest,
            bytes: bytes, sync: sync)
    }

    /// Checkpoints the write-ahead log into the database (best effort), closes the database
    /// and releases the data directory's lock. Later calls fail with `.io`; closing twice is
    /// harmless.
    public func close() {
        writer.withLock { _ in
            let (pool, lockDescriptor) = state.withLock { state in
                defer { state = State(pool: nil, lockDescriptor: nil) }
                return (state.pool, state.lockDescriptor)
            }
            guard let pool else { return }
            do {
                // A reader (``openForReading``, no lock) must not checkpoint the daemon's WAL.
                if lockDescriptor != nil { try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) } }
            } catch {
                logger.warning(
                    "journal.checkpoint_failed", metadata: ["journal.path": "\(databasePath)", "error": "\(error)"])
            }
            do {
                try pool.close()
            } catch {
                logger.warning(
                    "journal.close_failed", metadata: ["journal.path": "\(databasePath)", "error": "\(error)"])
            }
            if let lockDescriptor { DirectoryLock.release(lockDescriptor) }
            logger.info("journal.closed", metadata: ["journal.path": "\(databasePath)"])
        }
    }

    /// The writer connection's `journal_mode` and `synchronous` (1 NORMAL, 2 FULL), for tests.
    func connectionSettings() throws(JournalError) -> (journalMode: String, synchronous: Int) {
        let pool = try pool()
        return try Self.database(databasePath) {
            try pool.writeWithoutTransaction { db in
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
                let synchronous = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
                return (mode, synchronous)
            }
        }
    }

    // MARK: - Helpers

    /// The stored `journal_id` and the newest seq (0 when empty).
    static func identity(_ db: Database) throws -> (journalID: String?, newestSeq: Int) {
        let id = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'journal_id'")
        let newest = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM events") ?? 0
        return (id, newest)
    }

    func pool() throws(JournalError) -> DatabasePool {
        guard let pool = state.withLock({ $0.pool }) else {
            throw JournalError(.io, "journal \(databasePath) is closed")
        }
        return pool
    }

    /// The date a `ts` value stands for, as whole seconds plus microseconds (so that it
    /// prints back as the same RFC 3339 text).
    static func date(microseconds: Int64) -> Date {
        let seconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        return Date(timeIntervalSince1970: Double(seconds) + Double(microseconds - seconds * 1_000_000) / 1_000_000)
    }

    /// `date` in whole microseconds since 1970 (the `ts` column).
    static func microseconds(_ date: Date) -> Int64 {
        let (seconds, micros) = RFC3339.wholeMicroseconds(date)
        return seconds.multipliedReportingOverflow(by: 1_000_000).partialValue &+ micros
    }

    /// A row of ``selectSQL``, decoded without trapping on unexpected values.
    private static func record(_ row: Row) throws -> JournalRecord {
        JournalRecord(
            seq: try row.decode(Int.self, atIndex: 0),
            type: try row.decode(String.self, atIndex: 1),
            timestamp: Self.date(microseconds: try row.decode(Int64.self, atIndex: 2)),
            data: try row.withUnsafeData(atIndex: 3) { $0.map { [UInt8]($0) } ?? [] },
            metadata: try row.withUnsafeData(atIndex: 4) { $0.map { [UInt8]($0) } ?? [] },
            dataType: try row.decode(String.self, atIndex: 5),
            subscriberCount: try row.decode(Int.self, atIndex: 6))
    }

    /// Our pattern (`*` any run, `?` one character, everything else literal) as an SQLite
    /// GLOB: the same, except that `[` (a GLOB character class) is written `[[]`.
    static func glob(_ pattern: String) -> String {
        guard pattern.contains("[") else { return pattern }
        var glob = ""
        for character in pattern {
            if character == "[" { glob += "[[]" } else { glob.append(character) }
        }
        return glob
    }

    private static func fileSize(_ path: String) -> Int {
        var status = stat()
        guard stat(path, &status) == 0 else { return 0 }
        return Int(status.st_size)
    }

    /// Runs `body`, turning GRDB/SQLite errors into ``JournalError`` (`.incompatible` for a
    /// file that is not a database or is corrupt, else `.io`) with SQLite's message.
    static func database<T>(_ path: String, _ body: () throws -> T) throws(JournalError) -> T {
        do {
            return try body()
        } catch let error as JournalError {
            throw error
        } catch let error as DatabaseError {
            let message =
                "journal \(path): \(error.message ?? "SQLite error") (SQLite code \(error.extendedResultCode.rawValue))"
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT: throw JournalError(.incompatible, message)
            default: throw JournalError(.io, message)
            }
        } catch {
            throw JournalError(.io, "journal \(path): \(error)")
        }
    }
}

/// What the append path writes of one row: a ``JournalRecord``, or an ``Event`` whose data
/// and metadata are lent from its encoding.
protocol JournalRow {
    var seq: Int { get }
    var type: String { get }
    var timestamp: Date { get }
    var dataType: String { get }
    var subscriberCount: Int { get }
    /// Calls `body` with the compact JSON of the data and of the metadata.
    func withDataAndMetadata<T>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> T) -> T
}

extension JournalRecord: JournalRow {
    func withDataAndMetadata<T>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> T) -> T {
        data.withUnsafeBytes { data in metadata.withUnsafeBytes { metadata in body(data, metadata) } }
    }
}

extension Event: JournalRow {
    var dataType: String { payload.jsonTypeName }
    /// The bus counts no subscribers when it journals an event (they are matched at dispatch).
    var subscriberCount: Int { 0 }

    func withDataAndMetadata<T>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> T) -> T {
        let data = dataJSON
        let metadata = metadataJSON
        return data.withUnsafeBytes { data in metadata.withUnsafeBytes { metadata in body(data, metadata) } }
    }
}
