import Foundation
import Testing
import TradewireBus

@testable import TradewireJournal

/// What a journal finds after a crash, and databases it must refuse.
@Suite struct JournalRecoveryTests {
    /// Appends to the journal's database in transactions of 100 rows, as the daemon would,
    /// until it is killed; says "writing" after five commits.
    static let crashingWriter = """
        import sqlite3, sys, time
        db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        commits = 0
        while True:
            db.execute("BEGIN IMMEDIATE")
            for _ in range(100):
                seq += 1
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (seq, "crash.tick", time.time(), b'{"n":%d}' % seq, b"{}", "object", 0))
            db.execute("COMMIT")
            commits += 1
            if commits == 5:
                print("writing", flush=True)
        """

    @Test func aWriterKilledMidLoopLeavesAConsistentPrefix() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journalID: String
        do {
            let journal = try openJournal(temp.path)
            defer { journal.close() }
            journalID = journal.journalID
            try journal.append(makeRecords(from: 1, count: 10))
        }
        let writer = try PythonChild(script: Self.crashingWriter, arguments: [temp.child("tradewire.db")])
        #expect(writer.readLine() == "writing")
        usleep(100_000)
        writer.sigkill()

        let journal = try openJournal(temp.path)
        defer { journal.close() }
        #expect(journal.journalID == journalID)
        let all = try journal.read(JournalQuery())
        let newest = try journal.newestSeq()
        #expect(all.map(\.seq) == Array(1...newest))
        #expect(newest >= 510)
        #expect((newest - 10) % 100 == 0, "only whole transactions survive")
        for record in all.dropFirst(10) {
            #expect(record.data == Array("{\"n\":\(record.seq)}".utf8))
            #expect(record.type == "crash.tick" && record.metadata == Array("{}".utf8))
        }
        try journal.append([makeRecord(newest + 1)])
        #expect(journalError { try journal.append([makeRecord(newest + 3)]) }?.kind == .seqOutOfOrder)
        #expect(try journal.summary().events == newest + 1)
    }

    @Test func aFileThatIsNotADatabaseIsIncompatible() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let garbage = Data(repeating: 0x5A, count: 8_192)
        #expect(FileManager.default.createFile(atPath: temp.child("tradewire.db"), contents: garbage))
        let error = journalError { try openJournal(temp.path) }
        #expect(error?.kind == .incompatible)
        #expect(error?.message.contains(temp.child("tradewire.db")) == true)
        // The lock was released on the way out.
        #expect(try runPython(DataDirectoryTests.lockTryer, temp.child("lock")))
    }

    @Test func aNewerSchemaIsIncompatible() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        try openJournal(temp.path).close()
        let database = temp.child("tradewire.db")
        #expect(
            try runPython(
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    + "db.execute(\"UPDATE meta SET value = '4' WHERE key = 'schema_version'\"); db.commit()",
                database))
        let error = journalError { try openJournal(temp.path) }
        #expect(error?.kind == .incompatible)
        #expect(error?.message.contains("schema version 4") == true)
    }

    @Test func anUnknownMigrationIsIncompatible() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        try openJournal(temp.path).close()
        #expect(
            try runPython(
                "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    + "db.execute(\"INSERT INTO grdb_migrations VALUES ('v4')\"); db.commit()",
                temp.child("tradewire.db")))
        #expect(journalError { try openJournal(temp.path) }?.kind == .incompatible)
    }
}

extension DataDirectoryTests {
    /// Exits 0 when it can take `DIR/lock` at once.
    static let lockTryer = """
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        """
}
