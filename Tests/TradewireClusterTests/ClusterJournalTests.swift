import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
import TradewireBus
import TradewireCluster
import TradewireJSON

/// The shared journal against a real PostgreSQL (started by the test).
@Suite(.serialized)
struct ClusterJournalTests {
    static func draft(_ type: String, _ n: Int, node: String = "a") -> EventDraft {
        EventDraft(
            type: type, timestamp: Date(timeIntervalSince1970: 1_764_547_200.123456),
            data: Array(#"{"n":\#(n),"node":"\#(node)","text":"é \"q\""}"#.utf8),
            metadata: Array(#"{"source":"test"}"#.utf8), dataType: "object")
    }

    static func journal(_ server: TestPostgres, node: String) async throws -> ClusterJournal {
        let journal = ClusterJournal(database: server.database(label: node), nodeID: node, logger: Logger(label: "t"))
        try await journal.migrate()
        return journal
    }

    @Test func migrationsAreVersionedIdempotentAndRefuseANewerSchema() async throws {
        try await withPostgres { server in
            let first = try await Self.journal(server, node: "a")
            try await first.migrate()  // again: nothing to do
            #expect(try server.psql("SELECT max(version) FROM tw_schema") == String(ClusterSchema.version))
            #expect(try server.psql("SELECT count(*) FROM tw_schema") == String(ClusterSchema.version))
            try server.psql("INSERT INTO tw_schema VALUES (\(ClusterSchema.version + 1), now())")
            await #expect(throws: ClusterError.self) { try await first.migrate() }
            do { try await first.migrate() } catch let error as ClusterError { #expect(error.kind == .incompatible) }
            first.database.close()
        }
    }

    @Test func anAppendGetsConsecutiveSeqsAndReadsBackExactly() async throws {
        try await withPostgres { server in
            let journal = try await Self.journal(server, node: "a")
            defer { journal.database.close() }
            let batch = (1...5).map { Self.draft("order.new", $0) }
            let receipt = try await journal.append(batch, batchKey: "a-1")
            #expect(receipt == AppendReceipt(firstSeq: 1, count: 5, replayed: false))
            let second = try await journal.append([Self.draft("fill", 6)], batchKey: "a-2")
            #expect(second.seqs == 6...6)
            let records = try await journal.read(after: 0)
            #expect(records.map(\.record.seq) == Array(1...6))
            #expect(records[0].record.data == batch[0].data)
            #expect(records[0].record.metadata == batch[0].metadata)
            #expect(records[0].record.timestamp == batch[0].timestamp)
            #expect(records[0].node == "a")
            #expect(try await journal.read(after: 4).map(\.record.seq) == [5, 6])
            #expect(try await journal.newestSeq() == 6)
            let fills = try await journal.read(JournalQuery(pattern: "fi?l"))
            #expect(fills.map(\.record.seq) == [6])
            let newest = try await journal.read(JournalQuery(limit: 2, newest: true))
            #expect(newest.map(\.record.seq) == [5, 6])
        }
    }

    @Test func aRetriedBatchIsNeverAppliedTwice() async throws {
        try await withPostgres { server in
            let journal = try await Self.journal(server, node: "a")
            defer { journal.database.close() }
            let batch = (1...3).map { Self.draft("x", $0) }
            let first = try await journal.append(batch, batchKey: "a-7")
            _ = try await journal.append([Self.draft("y", 9)], batchKey: "a-8")
            // The connection dropped after the commit: the writer retries the same key.
            let retry = try await journal.append(batch, batchKey: "a-7")
            #expect(retry == AppendReceipt(firstSeq: first.firstSeq, count: 3, replayed: true))
            #expect(try server.psql("SELECT count(*) FROM tw_events") == "4")
            // The same key from another node is another batch.
            let other = try await Self.journal(server, node: "b")
            defer { other.database.close() }
            #expect(try await other.append(batch, batchKey: "a-7").replayed == false)
        }
    }

    /// Three nodes append concurrently while a cursor reader follows: seq is exactly 1...N,
    /// each node's events keep their order, and the reader never sees a hole.
    @Test func concurrentNodesGetOneGaplessOrder() async throws {
        try await withPostgres { server in
            let nodes = try await [
                Self.journal(server, node: "n1"), Self.journal(server, node: "n2"), Self.journal(server, node: "n3"),
            ]
            defer { for node in nodes { node.database.close() } }
            let reader = try await Self.journal(server, node: "reader")
            defer { reader.database.close() }
            let batches = 40
            let detector = HoleDetector()
            let done = StopFlag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for journal in nodes {
                    group.addTask {
                        for b in 0..<batches {
                            let drafts = (0..<10).map { Self.draft("bench", b * 10 + $0, node: journal.nodeID) }
                            _ = try await journal.append(drafts, batchKey: "\(journal.nodeID)-\(b)")
                        }
                    }
                }
                group.addTask {
                    while !done.isSet {
                        let seen = try await reader.read(after: detector.cursor, limit: 500).map(\.record.seq)
                        detector.observe(seen)
                    }
                }
                for _ in 0..<3 { try await group.next() }
                done.set()
                try await group.waitForAll()
            }
            let all = try await reader.read(JournalQuery(limit: 10_000))
            #expect(all.map(\.record.seq) == Array(1...(3 * batches * 10)))
            for journal in nodes {
                let mine = all.filter { $0.node == journal.nodeID }
                let numbers = mine.map { record in
                    (try? JSONParser.parse(record.record.data)).flatMap { $0["n"]?.intValue } ?? -1
                }
                #expect(numbers == Array(0..<(batches * 10)), "per-node order for \(journal.nodeID)")
            }
            detector.observe(try await reader.read(after: detector.cursor, limit: 10_000).map(\.record.seq))
            detector.audit(all: all.map(\.record.seq))
            #expect(detector.skipped.isEmpty)
            #expect(detector.cursor == 3 * batches * 10)
        }
    }

    /// The negative control: a `bigserial` table read by a cursor does skip an event (a
    /// transaction that took its id first commits last), and the detector catches it; the
    /// same interleaving through `tw_append` cannot happen (the second append waits).
    @Test func theHoleDetectorCatchesABigserialSkipAndTwAppendHasNone() async throws {
        try await withPostgres { server in
            let journal = try await Self.journal(server, node: "a")
            defer { journal.database.close() }
            try server.psql("CREATE TABLE naive (id bigserial PRIMARY KEY, body text)")
            let logger = Logger(label: "t")
            let database = journal.database
            // Naive: A takes id 1 and holds its transaction; B takes id 2 and commits; the
            // reader moves its cursor to 2; A commits 1 behind the cursor.
            let naive = HoleDetector()
            try await database.withConnection("A") { a in
                try await a.query("BEGIN", logger: logger)
                try await a.query("INSERT INTO naive (body) VALUES ('a')", logger: logger)
                try server.psql("INSERT INTO naive (body) VALUES ('b')")
                naive.observe(try Self.ids(server.psql("SELECT id FROM naive WHERE id > 0 ORDER BY id")))
                try await a.query("COMMIT", logger: logger)
            }
            naive.observe(try Self.ids(server.psql("SELECT id FROM naive WHERE id > \(naive.cursor) ORDER BY id")))
            naive.audit(all: try Self.ids(server.psql("SELECT id FROM naive ORDER BY id")))
            #expect(naive.skipped == [1], "the negative control must show the skip")

            // tw_append: A appends and holds its transaction; B's append waits for A's lock.
            let ours = HoleDetector()
            let other = try await Self.journal(server, node: "b")
            defer { other.database.close() }
            try await database.withConnection("A", timeout: .seconds(30)) { a in
                try await a.query("BEGIN", logger: logger)
                try await a.query(
                    "SELECT * FROM tw_append('a', 'a-1', NULL, ARRAY['t'], ARRAY[0::bigint], ARRAY['1'], ARRAY['{}'], ARRAY['number'])",
                    logger: logger)
                let b = Task { try await other.append([Self.draft("t", 2, node: "b")], batchKey: "b-1") }
                try await Task.sleep(for: .milliseconds(300))
                ours.observe(try Self.ids(server.psql("SELECT seq FROM tw_events ORDER BY seq")))
                #expect(ours.cursor == 0, "B must not commit while A holds the append lock")
                try await a.query("COMMIT", logger: logger)
                #expect(try await b.value.firstSeq == 2)
            }
            ours.observe(try Self.ids(server.psql("SELECT seq FROM tw_events WHERE seq > \(ours.cursor) ORDER BY seq")))
            ours.audit(all: try Self.ids(server.psql("SELECT seq FROM tw_events ORDER BY seq")))
            #expect(ours.skipped.isEmpty)
            #expect(ours.cursor == 2)
        }
    }

    @Test func pruningGoesInBatchesAndKeepsTheNewest() async throws {
        try await withPostgres { server in
            let journal = try await Self.journal(server, node: "a")
            defer { journal.database.close() }
            for b in 0..<5 {
                _ = try await journal.append((0..<100).map { Self.draft("x", b * 100 + $0) }, batchKey: "a-\(b)")
            }
            #expect(try await journal.prune(below: 251, batchSize: 60) == 250)
            #expect(try server.psql("SELECT min(seq) || ' ' || max(seq) FROM tw_events") == "251 500")
            #expect(try server.psql("SELECT count(*) FROM tw_batches") == "3")
            // Never the newest, whatever the boundary.
            #expect(try await journal.prune(below: 10_000) == 249)
            #expect(try await journal.newestSeq() == 500)
            #expect(try await journal.append([Self.draft("x", 0)], batchKey: "a-9").firstSeq == 501)
        }
    }

    @Test func stateDocumentsAreSharedAndReplaced() async throws {
        try await withPostgres { server in
            let a = try await Self.journal(server, node: "a")
            let b = try await Self.journal(server, node: "b")
            defer {
                a.database.close()
                b.database.close()
            }
            #expect(try await a.loadState("book") == nil)
            try await a.saveState("book", Array(#"{"cash":1}"#.utf8))
            try await a.saveState("book", Array(#"{"cash":2}"#.utf8))
            #expect(try await b.loadState("book") == Array(#"{"cash":2}"#.utf8))
        }
    }

    @Test func anUnreachableDatabaseIsUnavailableInTime() async throws {
        let info = try ClusterConnectionInfo(parsing: "host=/tmp/tw-no-such-dir port=1 user=postgres")
        var quiet = Logger(label: "t")
        quiet.logLevel = .critical  // every failed connection attempt is logged otherwise
        let database = ClusterDatabase(info: info, logger: quiet)
        defer { database.close() }
        let journal = ClusterJournal(database: database, nodeID: "a", logger: Logger(label: "t"))
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try await journal.append([Self.draft("x", 1)], batchKey: "a-1")
            Issue.record("an append to nowhere succeeded")
        } catch {
            #expect(error.kind == .unavailable)
        }
        #expect(clock.now - start < .seconds(8))
    }

    static func ids(_ text: String) -> [Int] {
        text.split(separator: "\n").compactMap { Int($0) }
    }
}

/// Follows a cursor the way a naive reader does (it moves to the newest id it saw), and
/// finds the ids that appeared behind it later: events such a reader skips forever.
final class HoleDetector: Sendable {
    private let state = Mutex<(cursor: Int, seen: Set<Int>, skipped: [Int])>((0, [], []))

    var cursor: Int { state.withLock { $0.cursor } }
    var skipped: [Int] { state.withLock { $0.skipped } }

    /// A read of everything after the cursor, in order.
    func observe(_ ids: [Int]) {
        state.withLock { state in
            for id in ids {
                state.seen.insert(id)
                state.cursor = max(state.cursor, id)
            }
        }
    }

    /// Compares with the full table: an id at or below the cursor that was never observed
    /// was skipped.
    func audit(all ids: [Int]) {
        state.withLock { state in
            for id in ids where id <= state.cursor && !state.seen.contains(id) { state.skipped.append(id) }
        }
    }
}

/// A flag one task sets and others poll.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
