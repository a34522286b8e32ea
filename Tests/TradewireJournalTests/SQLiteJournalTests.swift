import Foundation
import GRDB
import Testing
import TradewireBus
import TradewireJSON

@testable import TradewireJournal

/// Storage, queries, retention and settings of the SQLite journal.
@Suite struct SQLiteJournalTests {
    @Test func appendAndReadKeepEveryFieldByteForByte() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        let unicode = Array(#"{"name":"Zoë ✓ 日本語 🚀","quote":"\"x\"\n","n":-1.5e-7,"ok":true}"#.utf8)
        let written = [
            JournalRecord(
                seq: 1, type: "market.tick:AAPL", timestamp: Date(timeIntervalSince1970: 1_764_500_000.123_456),
                data: unicode, metadata: Array(#"{"source":"tést","trace":[1,2]}"#.utf8), dataType: "object",
                subscriberCount: 7),
            JournalRecord(
                seq: 2, type: "a-b_c.d", timestamp: Date(timeIntervalSince1970: 0.000_123), data: Array("[]".utf8),
                metadata: Array("{}".utf8), dataType: "array", subscriberCount: 0),
            JournalRecord(
                seq: 3, type: "x", timestamp: Date(timeIntervalSince1970: 1_000_000_000.000_001),
                data: Array("null".utf8),
                metadata: [], dataType: "null", subscriberCount: Int(Int32.max) + 5),
        ]
        try journal.append(written)
        #expect(try journal.read(JournalQuery()) == written)
        #expect(try journal.newestSeq() == 3)

        // A timestamp straight from the clock comes back as the same microsecond (its RFC 3339
        // text is the same).
        let now = Date()
        try journal.append([
            JournalRecord(
                seq: 4, type: "clock", timestamp: now, data: Array("1".utf8), metadata: Array("{}".utf8),
                dataType: "number", subscriberCount: 1)
        ])
        let back = try #require(try journal.read(JournalQuery(afterSeq: 3)).first)
        // Half a microsecond of rounding, plus a double's resolution at today's epoch (~0.24 µs).
        #expect(abs(back.timestamp.timeIntervalSince(now)) < 1e-6)
        #expect(RFC3339.string(from: back.timestamp) == RFC3339.string(from: now))
    }

    /// The bus appends events, and the journal writes their data and metadata from the
    /// events' own encoding: what it stores is byte for byte the record of each event.
    @Test func eventsAppendAsTheirRecords() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let direct = try openJournal(temp.path + "/direct")
        defer { direct.close() }
        let viaRecords = try openJournal(temp.path + "/records")
        defer { viaRecords.close() }
        let payloads: [JSONValue] = [
            ["name": "Zoë ✓ 🚀", "quote": "\"x\"\n", "n": -1.5e-7, "ok": true, "list": [1, [2], [:]]],
            "plain text", 42, 0.25, .null, false, [], [:],
        ]
        let metadata: [JSONObject] = [[:], ["iteration_id": "it-1", "source": "tést", "depth": ["a": [1, 2]]]]
        let events = payloads.enumerated().map { index, payload in
            Event(
                seq: index + 1, type: "kind.\(index)",
                timestamp: Date(timeIntervalSince1970: 1_764_500_000.5 + Double(index)),
                payload: payload, metadata: metadata[index % 2])
        }
        try direct.append(events: Array(events.prefix(3)))
        try direct.append(events: Array(events.dropFirst(3)))
        try viaRecords.append(events.map(JournalRecord.init(event:)))
        let stored = try direct.read(JournalQuery())
        #expect(stored == (try viaRecords.read(JournalQuery())))
        #expect(stored.map(\.seq) == Array(1...payloads.count))
        for (record, event) in zip(stored, events) {
            #expect(record.data == Array(event.dataJSON))
            #expect(record.metadata == Array(event.metadataJSON))
            #expect(record.dataType == event.payload.jsonTypeName)
            #expect(record.subscriberCount == 0)
            #expect(RFC3339Text(record.timestamp) == event.timestampText)
        }
        #expect(journalError { try direct.append(events: [events[0]]) }?.kind == .seqOutOfOrder)
    }

    /// A batch whose insert fails part way stores none of its rows, and leaves no transaction
    /// open: the same seqs append afterwards. Both ways a statement can fail are covered: one
    /// that leaves the transaction to the caller (`RAISE(ABORT)`) and one that SQLite rolls
    /// back itself (`RAISE(ROLLBACK)`).
    @Test func aBatchThatFailsPartWayStoresNothingAndTheNextAppendGoesThrough() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        try journal.append(makeRecords(from: 1, count: 2))
        try journal.pool().writeWithoutTransaction { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER refuse_abort BEFORE INSERT ON events WHEN NEW.type = 'poison.abort'
                    BEGIN SELECT RAISE(ABORT, 'refused'); END;
                    CREATE TRIGGER refuse_rollback BEFORE INSERT ON events WHEN NEW.type = 'poison.rollback'
                    BEGIN SELECT RAISE(ROLLBACK, 'refused'); END;
                    """)
        }
        for poison in ["poison.abort", "poison.rollback"] {
            let batch = [makeRecord(3), makeRecord(4), makeRecord(5, type: poison), makeRecord(6)]
            let failure = journalError { try journal.append(batch) }
            #expect(failure?.kind == .io, "\(poison)")
            #expect(failure?.message.contains("refused") == true, "\(failure?.message ?? "no error")")
            #expect(try journal.read(JournalQuery()).map(\.seq) == [1, 2], "\(poison): nothing of the batch stayed")
            #expect(try journal.newestSeq() == 2)
        }
        try journal.append(makeRecords(from: 3, count: 4))
        #expect(try journal.read(JournalQuery()).map(\.seq) == [1, 2, 3, 4, 5, 6])
        #expect(try journal.summary().newestSeq == 6)
    }

    @Test func storedTimesPrintAsTheSameRFC3339TextForAnyDate() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100_000 {
            let date = Date(timeIntervalSince1970: Double.random(in: -2e9...4e9, using: &generator))
            let back = SQLiteJournal.date(microseconds: SQLiteJournal.microseconds(date))
            #expect(RFC3339.string(from: back) == RFC3339.string(from: date))
        }
    }

    @Test func seqContinuesAcrossReopenAndRefusesGapsAndRepeats() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        do {
            let journal = try openJournal(temp.path)
            defer { journal.close() }
            #expect(try journal.newestSeq() == 0)
            #expect(journalError { try journal.append([makeRecord(2)]) }?.kind == .seqOutOfOrder)
            try journal.append(makeRecords(from: 1, count: 5))
        }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        #expect(try journal.newestSeq() == 5)
        let gap = journalError { try journal.append([makeRecord(7)]) }
        #expect(gap?.kind == .seqOutOfOrder)
        #expect(gap?.message.contains("newest is 5") == true)
        #expect(journalError { try journal.append([makeRecord(5)]) }?.kind == .seqOutOfOrder)
        #expect(journalError { try journal.append([makeRecord(6), makeRecord(8)]) }?.kind == .seqOutOfOrder)
        #expect(journalError { try journal.append([makeRecord(6), makeRecord(6)]) }?.kind == .seqOutOfOrder)
        #expect(try journal.read(JournalQuery()).map(\.seq) == [1, 2, 3, 4, 5])
        #expect(try journal.newestSeq() == 5)
        try journal.append([])
        try journal.append(makeRecords(from: 6, count: 2))
        #expect(try journal.newestSeq() == 7)
        #expect(try journal.read(JournalQuery()).map(\.seq) == Array(1...7))
    }

    @Test func journalIDIsStableForADirectoryAndNewForAnother() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let first = try openJournal(temp.child("a"))
        let id = first.journalID
        first.close()
        #expect(UUID(uuidString: id) != nil)
        let again = try openJournal(temp.child("a"))
        #expect(again.journalID == id)
        again.close()
        let other = try openJournal(temp.child("b"))
        #expect(other.journalID != id)
        other.close()
    }

    @Test func queriesFilterBySeqPatternAndLimit() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        let types = [
            "trade.buy", "trade.sell", "quote.a", "trade.bx", "quote.bb", "trade.buy", "audit", "trade.sell",
            "q[1]", "trade.buy",
        ]
        try journal.append(types.enumerated().map { makeRecord($0.offset + 1, type: $0.element) })
        func seqs(_ query: JournalQuery) throws -> [Int] { try journal.read(query).map(\.seq) }

        #expect(try seqs(JournalQuery()) == Array(1...10))
        #expect(try seqs(JournalQuery(afterSeq: 7)) == [8, 9, 10])
        #expect(try seqs(JournalQuery(afterSeq: 10)) == [])
        #expect(try seqs(JournalQuery(pattern: "trade.*")) == [1, 2, 4, 6, 8, 10])
        #expect(try seqs(JournalQuery(pattern: "*")) == Array(1...10))
        #expect(try seqs(JournalQuery(pattern: "trade.b??")) == [1, 6, 10])
        #expect(try seqs(JournalQuery(pattern: "trade.b?")) == [4])
        #expect(try seqs(JournalQuery(pattern: "?uote.*")) == [3, 5])
        #expect(try seqs(JournalQuery(pattern: "*.s*l")) == [2, 8])
        #expect(try seqs(JournalQuery(pattern: "audit")) == [7])
        #expect(try seqs(JournalQuery(pattern: "Audit")) == [])
        // `[` is literal, never a GLOB character class.
        #expect(try seqs(JournalQuery(pattern: "q[1]")) == [9])
        #expect(try seqs(JournalQuery(pattern: "q[?]")) == [9])
        #expect(try seqs(JournalQuery(pattern: "[q]*")) == [])
        #expect(try seqs(JournalQuery(pattern: "'; DROP TABLE events; --")) == [])
        #expect(try seqs(JournalQuery(limit: 3)) == [1, 2, 3])
        #expect(try seqs(JournalQuery(limit: 3, newest: true)) == [8, 9, 10])
        #expect(try seqs(JournalQuery(newest: true)) == Array(1...10))
        #expect(try seqs(JournalQuery(limit: 0)) == [])
        #expect(try seqs(JournalQuery(limit: 50, newest: true)) == Array(1...10))
        #expect(try seqs(JournalQuery(afterSeq: 2, pattern: "trade.*", limit: 2)) == [4, 6])
        #expect(try seqs(JournalQuery(afterSeq: 2, pattern: "trade.*", limit: 2, newest: true)) == [8, 10])
        #expect(try seqs(JournalQuery(afterSeq: 5, pattern: "trade.buy", limit: 5, newest: true)) == [6, 10])
        #expect(try journal.summary().events == 10)
    }

    @Test func pruneByCountRemovesTheOldestAndKeepsTheNewest() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        try journal.append(makeRecords(from: 1, count: 10))
        #expect(try journal.prune(keepingAtMost: 20, olderThan: nil) == 0)
        #expect(try journal.prune(keepingAtMost: 3, olderThan: nil) == 7)
        #expect(try journal.read(JournalQuery()).map(\.seq) == [8, 9, 10])
        #expect(try journal.prune(keepingAtMost: 0, olderThan: nil) == 2)
        #expect(try journal.read(JournalQuery()).map(\.seq) == [10])
        #expect(try journal.prune(keepingAtMost: -5, olderThan: nil) == 0)
        let summary = try journal.summary()
        #expect(summary.events == 1 && summary.oldestSeq == 10 && summary.newestSeq == 10)
        try journal.append([makeRecord(11)])

        // More than one prune transaction's worth.
        try journal.append(makeRecords(from: 12, count: 25_000))
        #expect(try journal.prune(keepingAtMost: 100, olderThan: nil) == 24_902)
        #expect(try journal.read(JournalQuery()).map(\.seq) == Array(24_912...25_011))
        #expect(try journal.summary().events == 100)
    }

    @Test func pruneByAgeRemovesOldRecordsButNeverTheNewest() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        do {
            let journal = try openJournal(temp.path)
            defer { journal.close() }
            try journal.append((1...10).map { makeRecord($0, at: 1_000 + Double($0)) })
            #expect(try journal.prune(keepingAtMost: 100, olderThan: Date(timeIntervalSince1970: 1_000)) == 0)
            #expect(try journal.prune(keepingAtMost: 100, olderThan: Date(timeIntervalSince1970: 1_004.5)) == 4)
            #expect(try journal.read(JournalQuery()).map(\.seq) == [5, 6, 7, 8, 9, 10])
            // Count and age together: the stricter wins.
            #expect(try journal.prune(keepingAtMost: 2, olderThan: Date(timeIntervalSince1970: 1_006.5)) == 4)
            #expect(try journal.read(JournalQuery()).map(\.seq) == [9, 10])
            // Everything is old: the newest stays.
            #expect(try journal.prune(keepingAtMost: 100, olderThan: Date(timeIntervalSince1970: 9_999_999_999)) == 1)
            #expect(try journal.read(JournalQuery()).map(\.seq) == [10])
        }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        #expect(try journal.newestSeq() == 10)
        try journal.append([makeRecord(11)])
        #expect(try journal.read(JournalQuery()).map(\.seq) == [10, 11])
    }

    @Test func summaryReportsLocationCountsAndSize() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path, sync: .full)
        defer { journal.close() }
        let empty = try journal.summary()
        #expect(empty.location == temp.path + "/tradewire.db")
        #expect(empty.journalID == journal.journalID)
        #expect(empty.events == 0 && empty.oldestSeq == nil && empty.newestSeq == nil)
        #expect(empty.sync == .full)
        try journal.append(makeRecords(from: 1, count: 500))
        let summary = try journal.summary()
        #expect(summary.events == 500 && summary.oldestSeq == 1 && summary.newestSeq == 500)
        #expect(summary.bytes > 500 * 10)
    }

    @Test(arguments: [(JournalSync.normal, 1), (JournalSync.full, 2)])
    func walModeAndSynchronousLevelAreAsConfigured(sync: JournalSync, level: Int) throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path, sync: sync)
        defer { journal.close() }
        let settings = try journal.connectionSettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == level)
        #expect(journal.sync == sync)
    }

    @Test func aClosedJournalFailsWithIO() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        try journal.append([makeRecord(1)])
        journal.close()
        journal.close()
        #expect(journalError { try journal.read(JournalQuery()) }?.kind == .io)
        #expect(journalError { try journal.append([makeRecord(2)]) }?.kind == .io)
        #expect(journalError { try journal.summary() }?.kind == .io)
        #expect(journalError { try journal.newestSeq() }?.kind == .io)
    }

    @Test func readsRunWhileAnotherThreadAppends() async throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        let writer = Task.detached {
            for batch in 0..<50 { try journal.append(makeRecords(from: batch * 100 + 1, count: 100)) }
        }
        var last = 0
        while last < 5_000 {
            let seqs = try journal.read(JournalQuery(afterSeq: last)).map(\.seq)
            // Every read sees a consecutive run of whole transactions.
            #expect(seqs == Array((last + 1)..<(last + 1 + seqs.count)))
            #expect(seqs.count % 100 == 0)
            last = seqs.last ?? last
            if seqs.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        }
        try await writer.value
    }

    /// Prints the append rate; performance targets belong to benchmarks, so nothing is
    /// asserted about time.
    @Test func appendThroughputInBatchesOfAThousand() throws {
        let temp = TemporaryDirectory()
        defer { temp.remove() }
        let journal = try openJournal(temp.path)
        defer { journal.close() }
        let batches = 200
        let payload = Array(#"{"symbol":"AAPL","price":187.25,"qty":100,"side":"buy"}"#.utf8)
        let prepared = (0..<batches).map { batch in
            (1...1_000).map { offset in
                JournalRecord(
                    seq: batch * 1_000 + offset, type: "market.tick", timestamp: Date(timeIntervalSince1970: 1.5e9),
                    data: payload, metadata: Array("{}".utf8), dataType: "object", subscriberCount: 1)
            }
        }
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for batch in prepared { try journal.append(batch) }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("journal append: \(Int(Double(batches * 1_000) / seconds)) records/s (batches of 1000)")
        #expect(try journal.newestSeq() == batches * 1_000)
    }
}
