import Foundation
import Logging
import Testing
import TradewireBus
import TradewireCluster

/// Durable consumers shared through the database (claims with a visibility timeout),
/// against a real PostgreSQL: two nodes, each with its own pool.
@Suite(.serialized)
struct ClusterConsumersTests {
    static func withTwoNodes(
        _ body: (TestPostgres, ClusterJournal, ClusterConsumers, ClusterConsumers) async throws -> Void
    ) async throws {
        try await withPostgres { server in
            let journal = ClusterJournal(database: server.database(label: "a"), nodeID: "a", logger: Logger(label: "a"))
            let other = server.database(label: "b")
            defer {
                journal.database.close()
                other.close()
            }
            try await journal.migrate()
            try await body(
                server, journal, ClusterConsumers(database: journal.database, nodeID: "a"),
                ClusterConsumers(database: other, nodeID: "b"))
        }
    }

    static func publish(_ journal: ClusterJournal, _ types: [String]) async throws {
        let drafts = types.enumerated().map { index, type in ClusterJournalTests.draft(type, index) }
        _ = try await journal.append(drafts, batchKey: UUID().uuidString)
    }

    static func settings(
        _ name: String, _ pattern: String, ackWait: Int = 60_000, maxDeliver: Int = 3, maxInFlight: Int = 256
    ) throws -> ConsumerSettings {
        ConsumerSettings(
            name: name, pattern: try EventPattern(pattern), ackWaitMilliseconds: ackWait, maxDeliver: maxDeliver,
            maxInFlight: maxInFlight)
    }

    /// Opening twice keeps the first settings; a new consumer starts after the newest event
    /// unless `since` says otherwise; each event goes to one node, and `max_in_flight` bounds
    /// what both nodes have out together.
    @Test func nodesShareOneConsumerWithinMaxInFlight() async throws {
        try await Self.withTwoNodes { server, journal, a, b in
            try await Self.publish(journal, ["old.x"])
            let opened = try await a.open(Self.settings("q", "orders.*", maxInFlight: 5), since: nil)
            #expect(opened.created && opened.settings.maxInFlight == 5)
            let again = try await b.open(Self.settings("q", "other.*", maxInFlight: 9), since: 0)
            #expect(!again.created && again.settings.pattern.text == "orders.*" && again.settings.maxInFlight == 5)
            try await Self.publish(journal, (0..<8).map { $0 % 2 == 0 ? "orders.new" : "quotes.tick" })
            try await Self.publish(journal, (0..<4).map { _ in "orders.fill" })
            let first = try await a.claim("q", limit: 3)
            #expect(first.map(\.seq) == [2, 4, 6] && first.allSatisfy { $0.attempt == 1 && $0.event != nil })
            #expect(first.first?.event?.type == "orders.new")
            let second = try await b.claim("q", limit: 100)
            #expect(second.map(\.seq) == [8, 10], "only 5 out at once")
            #expect(try await a.claim("q", limit: 100).isEmpty)
            #expect(try await b.ack("q", seqs: [2, 4]) == 0, "b does not hold a's")
            #expect(try await b.ack("q", seq: 2) == 1, "a seq is acknowledged wherever it is out")
            #expect(try await a.ack("q", seqs: [4, 6]) == 2)
            #expect(try await b.claim("q", limit: 100).map(\.seq) == [11, 12, 13])
            let summary = try #require(try await a.list().first)
            #expect(summary.pending == 5 && summary.position == 13 && summary.settings.name == "q")
            #expect(try server.psql("SELECT count(*) FROM tw_claims") == "5")
            await #expect(throws: ClusterError.self) { _ = try await a.claim("nope", limit: 1) }
        }
    }

    /// A claim whose ack_wait passed goes out again on any node, attempt + 1; after
    /// max_deliver attempts it becomes a dead letter (with its event); a retried one goes out
    /// from attempt 1, and a released undelivered one keeps its attempt.
    @Test func expiredClaimsAreRedeliveredThenBuried() async throws {
        try await Self.withTwoNodes { server, journal, a, b in
            _ = try await a.open(Self.settings("r", "job.*", ackWait: 300, maxDeliver: 2), since: 0)
            try await Self.publish(journal, ["job.a", "job.b"])
            #expect(try await a.claim("r", limit: 10).map(\.attempt) == [1, 1])
            #expect(try await b.claim("r", limit: 10).isEmpty, "not visible before ack_wait")
            try await Task.sleep(for: .milliseconds(400))
            let again = try await b.claim("r", limit: 1)
            #expect(again.map(\.seq) == [1] && again.map(\.attempt) == [2])
            try await b.release("r", seqs: [1], undelivered: true)
            #expect(
                try await a.claim("r", limit: 10).map(\.attempt) == [2, 2], "an undelivered release keeps the count")
            #expect(try await a.nak("r", seq: 2, delay: .zero, error: "boom"))
            #expect(!(try await a.nak("r", seq: 2, delay: .zero, error: "again")), "not out any more")
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await b.claim("r", limit: 10).isEmpty)
            let letters = try await b.deadLetters(consumer: "r", limit: 10)
            #expect(letters.map(\.seq) == [2, 1] && letters.map(\.attempts) == [2, 2], "oldest first")
            #expect(letters.map(\.lastError) == ["boom", "ack_wait expired"])
            #expect(letters.allSatisfy { $0.event?.type.hasPrefix("job.") == true })
            #expect(try await a.retry(deadLetter: letters[0].id))
            #expect(!(try await a.retry(deadLetter: letters[0].id)))
            #expect(try await b.claim("r", limit: 10).map(\.attempt) == [1])
            #expect(try await a.discard(deadLetter: letters[1].id) == 1)
            #expect(try await a.delete("r") == 1)
            #expect(try server.psql("SELECT count(*) FROM tw_claims") == "0")
        }
    }

    /// A consumer whose pattern matches little moves through the journal in bounded scans,
    /// and a node restarting gives back what it had out (at once, to any node).
    @Test func positionAdvancesPastNonMatchingEventsAndReleaseAllGivesBack() async throws {
        try await Self.withTwoNodes { _, journal, a, b in
            _ = try await a.open(Self.settings("s", "rare.*"), since: 0)
            try await Self.publish(journal, Array(repeating: "noise", count: 50) + ["rare.one"])
            #expect(try await a.claim("s", limit: 10).map(\.seq) == [51])
            try await Self.publish(journal, Array(repeating: "noise", count: 20))
            #expect(try await a.claim("s", limit: 10).isEmpty)
            #expect(try await a.list().first?.position == 71)
            try await a.releaseAll()
            #expect(try await b.claim("s", limit: 10).map(\.attempt) == [2])
        }
    }
}
