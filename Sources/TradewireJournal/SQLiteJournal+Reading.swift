import Foundation
import GRDB
import Logging
import Synchronization
import TradewireBus

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension SQLiteJournal {
    /// Opens the journal in `directory` to read it only (`tradewire journal export`), whether
    /// or not a daemon runs on it.
    ///
    /// Unlike ``open(directory:sync:logger:)`` it takes no lock, creates nothing of its own
    /// (the directory and the database must exist) and runs no migration: the database is
    /// opened read-only (SQLite may still create the `-wal` and `-shm` files beside it, as
    /// any WAL reader does). Each read is its own transaction, so a running daemon's commits
    /// show up in later reads; ``newestSeq()`` is the newest at open, ``summary()`` reads the
    /// current range. Writes (append, restore, prune, saveState) fail with `.io`.
    ///
    /// - Throws: `.unusable` when the directory or `tradewire.db` does not exist (or is not a
    ///   directory, a regular file), `.incompatible` when the database is not a tradewire
    ///   journal or was written by a newer tradewired, `.io` when SQLite fails.
    public static func openForReading(directory: String, logger: Logger) throws(JournalError) -> SQLiteJournal {
        let directory = try DataDirectory.normalize(directory)
        let databasePath = directory + "/tradewire.db"
        try checkReadable(directory: directory, databasePath: databasePath)
        var configuration = Configuration()
        configuration.label = "tradewire.journal.reader"
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        configuration.maximumReaderCount = 2
        let pool = try database(databasePath) { try DatabasePool(path: databasePath, configuration: configuration) }
        do throws(JournalError) {
            let (journalID, newestSeq) = try database(databasePath) { () throws -> (String?, Int) in
                try pool.read { db in
                    try JournalSchema.checkCompatible(db, path: databasePath)
                    // A database a daemon would migrate (empty, or someone else's tables) is
                    // not a journal to read.
                    guard try db.tableExists("meta"), try db.tableExists("events") else {
                        throw JournalError(.incompatible, "\(databasePath) is not a tradewire journal")
                    }
                    return try identity(db)
                }
            }
            guard let journalID, !journalID.isEmpty else {
                throw JournalError(.incompatible, "journal \(databasePath) has no journal_id")
            }
            logger.debug(
                "journal.opened_for_reading",
                metadata: [
                    "journal.path": "\(databasePath)", "journal.id": "\(journalID)",
                    "journal.newest_seq": "\(newestSeq)",
                ])
            let journal = SQLiteJournal(
                journalID: journalID, directory: directory, databasePath: databasePath, sync: .normal,
                newestSeq: newestSeq, pool: pool, lockDescriptor: -1, logger: logger)
            // No lock is held: closing releases the database only.
            journal.state.withLock { $0.lockDescriptor = nil }
            return journal
        } catch {
            try? pool.close()
            throw error
        }
    }

    /// How many records have a seq in `afterSeq + 1 ... throughSeq` and a type matching
    /// `pattern` (`*` any run, `?` one character; nil for every type).
    public func count(afterSeq: Int, throughSeq: Int, pattern: String?) throws(JournalError) -> Int {
        guard throughSeq > afterSeq else { return 0 }
        var sql = "SELECT COUNT(*) FROM events WHERE seq > ? AND seq <= ?"
        var arguments: StatementArguments = [afterSeq, throughSeq]
        if let pattern, pattern != "*" {
            sql += " AND type GLOB ?"
            arguments += [Self.glob(pattern)]
        }
        let pool = try pool()
        return try Self.database(databasePath) {
            try pool.read { db in try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0 }
        }
    }

    /// The directory and the database file exist, as a directory and a regular file.
    private static func checkReadable(directory: String, databasePath: String) throws(JournalError) {
        var status = stat()
        guard stat(directory, &status) == 0 else {
            if errno == ENOENT { throw JournalError(.unusable, "data dir \(directory) does not exist") }
            throw JournalError(.unusable, "data dir \(directory): cannot inspect it: \(lastError())")
        }
        guard UInt32(status.st_mode) & 0o170000 == 0o040000 else {
            throw JournalError(.unusable, "data dir \(directory) is not a directory")
        }
        guard lstat(databasePath, &status) == 0 else {
            if errno == ENOENT {
                throw JournalError(.unusable, "data dir \(directory) holds no journal (\(databasePath) does not exist)")
            }
            throw JournalError(.unusable, "journal \(databasePath): cannot inspect it: \(lastError())")
        }
        guard UInt32(status.st_mode) & 0o170000 == 0o100000 else {
            throw JournalError(.unusable, "journal \(databasePath) is not a regular file")
        }
    }
}
