import Foundation
import Logging
import Synchronization
import Testing
import TradewireBus
import TradewireCluster

/// Following the shared journal: in order, woken by LISTEN, caught up by the poll when the
/// listening connection dies.
@Suite(.serialized)
struct ClusterTailTests {
    @Test func theTailDeliversEverySeqOnceInOrder() async throws {
        try await withJournal { server, journal in
            let tail = ClusterTail(
                journal: journal, after: 0, pollInterval: .seconds(30), pageSize: 7, logger: Logger(label: "t"))
            let delivered = SeqLog()
            let run = Task { await tail.run { records in delivered.append(records.map(\.record.seq)) } }
            for b in 0..<10 {
                _ = try await journal.append(
                    (0..<5).map { ClusterJournalTests.draft("x", b * 5 + $0) }, batchKey: "a-\(b)")
            }
            // The poll is 30 s away: only LISTEN can have woken the tail this soon.
            try await ClusterLeaseTests.waitUntil(.seconds(5)) { delivered.seqs.count == 50 }
            #expect(delivered.seqs == Array(1...50))
            #expect(tail.notificationsReceived > 0)
            #expect(tail.gapsSeen == 0)
            run.cancel()
            await run.value
        }
    }

    @Test func thePollCatchesUpWhenTheListeningConnectionDies() async throws {
        try await withJournal { server, journal in
            let tail = ClusterTail(
                journal: journal, after: 0, pollInterval: .milliseconds(400), logger: Logger(label: "t"))
            let delivered = SeqLog()
            let run = Task { await tail.run { records in delivered.append(records.map(\.record.seq)) } }
            try await ClusterLeaseTests.waitUntil(.seconds(5)) {
                (try? server.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")) == "1"
            }
            // Kill the listener's backend; the poll must deliver what follows.
            #expect(
                try server.psql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'") == "1")
            let notified = tail.notificationsReceived
            // The terminated backend may also be a pooled connection the append picks up (the
            // pool finds out on use): retry it, under the same batch key, as a node would.
            for attempt in 1...3 {
                do {
                    _ = try await journal.append([ClusterJournalTests.draft("x", 1)], batchKey: "a-1")
                    break
                } catch let error as ClusterError where error.kind == .unavailable && attempt < 3 {
                    continue
                }
            }
            try await ClusterLeaseTests.waitUntil(.seconds(3)) { delivered.seqs == [1] }
            // …and LISTEN comes back.
            try await ClusterLeaseTests.waitUntil(.seconds(5)) {
                (try? server.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")) == "1"
            }
            _ = try await journal.append([ClusterJournalTests.draft("x", 2)], batchKey: "a-2")
            try await ClusterLeaseTests.waitUntil(.seconds(3)) { delivered.seqs == [1, 2] }
            #expect(notified <= tail.notificationsReceived)
            run.cancel()
            await run.value
        }
    }

    /// A hole at the head (history pruned under a lagging node, or a bug) is reported and
    /// waited on, never skipped.
    @Test func aGapIsNeverSkipped() async throws {
        try await withJournal { server, journal in
            _ = try await journal.append((1...3).map { ClusterJournalTests.draft("x", $0) }, batchKey: "a-1")
            try server.psql("DELETE FROM tw_events WHERE seq = 2")
            let tail = ClusterTail(
                journal: journal, after: 0, pollInterval: .milliseconds(100), logger: Logger(label: "t"))
            let delivered = SeqLog()
            let run = Task { await tail.run { records in delivered.append(records.map(\.record.seq)) } }
            try await ClusterLeaseTests.waitUntil(.seconds(3)) { tail.gapsSeen >= 2 }
            #expect(delivered.seqs == [1])
            run.cancel()
            await run.value
        }
    }
}

/// A fresh server with node a's journal (its pool closed afterwards).
func withJournal(_ body: (TestPostgres, ClusterJournal) async throws -> Void) async throws {
    try await withPostgres { server in
        let journal = ClusterJournal(database: server.database(), nodeID: "a", logger: Logger(label: "t"))
        defer { journal.database.close() }
        try await journal.migrate()
        try await body(server, journal)
    }
}

/// The seqs a tail delivered, in delivery order.
final class SeqLog: Sendable {
    private let log = Mutex<[Int]>([])
    var seqs: [Int] { log.withLock { $0 } }
    func append(_ seqs: [Int]) { log.withLock { $0 += seqs } }
}
