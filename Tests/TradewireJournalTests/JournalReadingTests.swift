import Foundation
import Logging
import Synchronization
import Testing
import TradewireBus

@testable import TradewireJournal

/// `SQLiteJournal.openForReading`: read-only, no lock, no migrations, clear refusals.
@Suite struct JournalReadingTests {
    @Test func readsWhileAWriterHoldsTheLockAndSeesItsLaterCommits() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let writer = try openJournal(temp.path)
        defer { writer.close() }
        try writer.append(makeRecords(from: 1, count: 10))
        try writer.append(makeRecords(from: 11, count: 5, type: "other.event"))

        let logs = CapturedLogs()
        let reader = try SQLiteJournal.openForReading(directory: temp.path, logger: logs.logger)
        #expect(reader.journalID == writer.journalID)
        #expect(try reader.newestSeq() == 15)
        #expect(try reader.read(JournalQuery()) == writer.read(JournalQuery()))
        #expect(try reader.read(JournalQuery(afterSeq: 12)).map(\.seq) == [13, 14, 15])
        #expect(try reader.count(afterSeq: 0, throughSeq: 15, pattern: "other.*") == 5)
        #expect(try reader.count(afterSeq: 3, throughSeq: 12, pattern: nil) == 9)
        #expect(try reader.count(afterSeq: 5, throughSeq: 5, pattern: nil) == 0)

        try writer.append(makeRecords(from: 16, count: 3))
        #expect(try reader.summary().newestSeq == 18)
        var scanned: [Int] = []
        try reader.scan(afterSeq: 0, pageSize: 4) { record in
            scanned.append(record.seq)
            return true
        }
        #expect(scanned == Array(1...18))

        // Read-only: nothing can be written through it (its newest seq is the one at open).
        let refused = journalError { try reader.append([makeRecord(16)]) }
        #expect(refused?.kind == .io)
        #expect(refused?.message.contains("readonly") == true, "\(String(describing: refused))")
        #expect(try writer.newestSeq() == 18)
        // Closing does not try to checkpoint the writer's WAL (which would fail, and warn).
        reader.close()
        #expect(logs.messages == ["info journal.closed"])
        try writer.append(makeRecords(from: 19, count: 1))
    }

    @Test func takesNoLock() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        try openJournal(temp.path).close()
        let reader = try SQLiteJournal.openForReading(directory: temp.path, logger: quietLogger)
        defer { reader.close() }
        // A daemon can still open the directory while the reader is open.
        let writer = try openJournal(temp.path)
        try writer.append(makeRecords(from: 1, count: 2))
        writer.close()
        #expect(try reader.read(JournalQuery()).map(\.seq) == [1, 2])
    }

    @Test func aMissingDirectoryOrDatabaseIsAClearError() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let missing = journalError {
            try SQLiteJournal.openForReading(directory: temp.child("nope"), logger: quietLogger)
        }
        #expect(missing?.kind == .unusable)
        #expect(missing?.message == "data dir \(temp.child("nope")) does not exist")

        let empty = journalError { try SQLiteJournal.openForReading(directory: temp.path, logger: quietLogger) }
        #expect(empty?.kind == .unusable)
        #expect(empty?.message.contains("holds no journal") == true)
        // Nothing was created on the way.
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path).isEmpty)

        #expect(FileManager.default.createFile(atPath: temp.child("file"), contents: Data()))
        let notDirectory = journalError {
            try SQLiteJournal.openForReading(directory: temp.child("file"), logger: quietLogger)
        }
        #expect(notDirectory?.message.contains("is not a directory") == true)
    }

    @Test func refusesWhatIsNotAJournal() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let database = temp.child("tradewire.db")
        #expect(FileManager.default.createFile(atPath: database, contents: Data(repeating: 0x5A, count: 8_192)))
        #expect(
            journalError { try SQLiteJournal.openForReading(directory: temp.path, logger: quietLogger) }?.kind
                == .incompatible)

        try FileManager.default.removeItem(atPath: database)
        #expect(
            try runPython(
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    + "db.execute('CREATE TABLE notes (x TEXT)'); db.commit()",
                database))
        let foreign = journalError { try SQLiteJournal.openForReading(directory: temp.path, logger: quietLogger) }
        #expect(foreign?.kind == .incompatible)
        #expect(foreign?.message == "\(database) is not a tradewire journal")
        // No migration ran: the foreign database is as it was.
        #expect(
            try runPython(
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    + "names = [r[0] for r in db.execute(\"SELECT name FROM sqlite_master WHERE type = 'table'\")]; "
                    + "sys.exit(0 if names == ['notes'] else 1)",
                database))
    }

    @Test func refusesANewerSchema() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        try openJournal(temp.path).close()
        let newer = JournalSchema.currentVersion + 1
        #expect(
            try runPython(
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    + "db.execute(\"UPDATE meta SET value = '\(newer)' WHERE key = 'schema_version'\"); db.commit()",
                temp.child("tradewire.db")))
        let error = journalError { try SQLiteJournal.openForReading(directory: temp.path, logger: quietLogger) }
        #expect(error?.kind == .incompatible)
        #expect(error?.message.contains("schema version \(newer)") == true)
    }

    @Test func dataDirectoryRuleSharedWithTheDaemon() {
        let home = ["HOME": "/home/u"]
        #expect(DataDirectory.resolve(explicit: "/d", environment: home) == "/d")
        #expect(DataDirectory.resolve(explicit: nil, environment: home) == "/home/u/.local/state/tradewire")
        #expect(DataDirectory.configured(explicit: nil, environment: home) == nil)
        let env = ["HOME": "/home/u", "XDG_STATE_HOME": "/state/", "TRADEWIRE_DATA_DIR": "/env"]
        #expect(DataDirectory.resolve(explicit: nil, environment: env) == "/env")
        #expect(DataDirectory.configured(explicit: nil, environment: env) == "/env")
        var xdg = env
        xdg["TRADEWIRE_DATA_DIR"] = ""
        #expect(DataDirectory.resolve(explicit: nil, environment: xdg) == "/state/tradewire")
        xdg["XDG_STATE_HOME"] = "relative"
        #expect(DataDirectory.resolve(explicit: nil, environment: xdg) == "/home/u/.local/state/tradewire")
        #expect(DataDirectory.resolve(explicit: nil, environment: [:]) == nil)
    }
}

/// Log messages at info level and above, for checks of what was said.
final class CapturedLogs: Sendable {
    private let storage = Mutex<[String]>([])

    var messages: [String] { storage.withLock { $0 } }

    var logger: Logger {
        Logger(label: "tradewire.journal.tests") { _ in Handler(logs: self) }
    }

    fileprivate func append(_ message: String) { storage.withLock { $0.append(message) } }

    private struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            logs.append("\(event.level) \(event.message)")
        }
    }
}
