import Foundation
import GRDB
import TradewireBus

/// The journal's database schema, versioned with GRDB's `DatabaseMigrator`.
///
/// Version 1:
/// - `events(seq INTEGER PRIMARY KEY, type TEXT, ts INTEGER (µs since 1970), data BLOB, metadata BLOB,
///   data_type TEXT, subscribers INTEGER)`, every column `NOT NULL`; `ts` is seconds since
///   1970 as a double (full precision); `data` and `metadata` are compact JSON bytes.
///   Indexes on `(type, seq)` (pattern reads) and on `ts` (retention by age).
/// - `meta(key TEXT PRIMARY KEY, value TEXT)`: `journal_id` (a random UUID, created once per
///   database) and `schema_version`.
///
/// Version 2: `state(key TEXT PRIMARY KEY, value BLOB)`: named JSON documents beside the
/// events (book checkpoints, loop settings, durable stage groups).
///
/// Version 3: drops the `ts` index (retention walks seq order, which is time order, and
/// every append paid for an index nothing read).
///
/// A later version adds a migration and raises ``currentVersion``; a database whose
/// `schema_version` (or migration list) is ahead of this code is refused as `.incompatible`.
enum JournalSchema {
    /// The newest schema this code knows.
    static let currentVersion = 3

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY,
                        type TEXT NOT NULL,
                        ts INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        metadata BLOB NOT NULL,
                        data_type TEXT NOT NULL,
                        subscribers INTEGER NOT NULL
                    );
                    CREATE INDEX events_type_seq ON events(type, seq);
                    CREATE INDEX events_ts ON events(ts);
                    CREATE TABLE meta (
                        key TEXT PRIMARY KEY,
                        value TEXT NOT NULL
                    );
                    """)
            try db.execute(
                sql: "INSERT INTO meta(key, value) VALUES ('journal_id', ?), ('schema_version', '1')",
                arguments: [UUID().uuidString.lowercased()])
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            try db.execute(sql: "UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        }
        migrator.registerMigration("v3") { db in
            try db.execute(sql: "DROP INDEX IF EXISTS events_ts")
            try db.execute(sql: "UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        }
        return migrator
    }

    /// Refuses a database written by a newer tradewired, or one that is not a journal.
    static func checkCompatible(_ db: Database, path: String) throws {
        let migrator = migrator
        if try migrator.hasBeenSuperseded(db) {
            let applied = try migrator.appliedIdentifiers(db).sorted().joined(separator: ", ")
            throw JournalError(
                .incompatible,
                "journal \(path) was written by a newer tradewired (migrations: \(applied)); "
                    + "this one knows schema version \(currentVersion)")
        }
        if try db.tableExists("meta") {
            let stored = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema_version'")
            if let stored, let version = Int(stored), version > currentVersion {
                throw JournalError(
                    .incompatible,
                    "journal \(path) has schema version \(version); this tradewired knows up to \(currentVersion)")
            }
        } else if try db.tableExists("events") {
            throw JournalError(.incompatible, "\(path) holds an events table but is not a tradewire journal")
        }
    }
}
