import Foundation
import Logging
import Synchronization
import Testing
import TradewireBus
import TradewireCluster

/// The leader's lease, its fencing epoch and failover, against a real PostgreSQL.
@Suite(.serialized)
struct ClusterLeaseTests {
    static func lease(_ server: TestPostgres, node: String) async throws -> (ClusterLease, ClusterJournal) {
        let journal = ClusterJournal(database: server.database(label: node), nodeID: node, logger: Logger(label: "t"))
        try await journal.migrate()
        return (ClusterLease(database: journal.database, nodeID: node), journal)
    }

    @Test func oneHolderAtATimeAndEveryTakeoverIsANewEpoch() async throws {
        try await Self.withTwoNodes { server, a, aj, b, bj in
            let first = try #require(try await a.acquireOrRenew(holding: nil, for: .seconds(6), timeout: .seconds(5)))
            #expect(first == 1)
            #expect(try await a.acquireOrRenew(holding: first, for: .seconds(6), timeout: .seconds(5)) == first)
            #expect(try await b.acquireOrRenew(holding: nil, for: .seconds(6), timeout: .seconds(5)) == nil)
            #expect(try await b.current() == Leadership(leader: "a", epoch: 1, isLeader: false))
            // A clean release: the next holder takes the next epoch at once.
            try await a.release(epoch: first)
            #expect(try await b.acquireOrRenew(holding: nil, for: .milliseconds(800), timeout: .seconds(5)) == 2)
            // An expired lease goes to whoever asks next, with a new epoch (even its old holder).
            try await Task.sleep(for: .milliseconds(1000))
            #expect(try await b.current().leader == nil)
            #expect(try await a.acquireOrRenew(holding: nil, for: .seconds(6), timeout: .seconds(5)) == 3)
            // b's renewal with its old epoch does not steal it back.
            #expect(try await b.acquireOrRenew(holding: 2, for: .seconds(6), timeout: .seconds(5)) == nil)
        }
    }

    @Test func appendsFromAnOldEpochAreRefused() async throws {
        try await Self.withTwoNodes { server, a, aj, b, bj in
            let epoch = try #require(
                try await a.acquireOrRenew(holding: nil, for: .milliseconds(700), timeout: .seconds(5)))
            let draft = ClusterJournalTests.draft("order.new", 1)
            #expect(try await aj.append([draft], batchKey: "a-1", epoch: epoch).firstSeq == 1)
            // A client publish (no epoch) never needs the lease.
            #expect(try await bj.append([draft], batchKey: "b-1").firstSeq == 2)
            try await Task.sleep(for: .milliseconds(900))
            let next = try #require(try await b.acquireOrRenew(holding: nil, for: .seconds(6), timeout: .seconds(5)))
            #expect(next == epoch + 1)
            do {
                _ = try await aj.append([draft], batchKey: "a-2", epoch: epoch)
                Issue.record("the old epoch appended")
            } catch let error as ClusterError {
                #expect(error.kind == .fenced)
            }
            #expect(try await bj.append([draft], batchKey: "b-2", epoch: next).firstSeq == 3)
            #expect(
                try server.psql("SELECT string_agg(coalesce(epoch::text, '-'), ',' ORDER BY seq) FROM tw_events")
                    == "1,-,2")
        }
    }

    /// Two electors: the first leads; stopped cleanly, the second leads within 1 s. Then the
    /// new leader's database goes away (a crash, from the cluster's side): it steps down on
    /// its own clock, and the other takes over within 10 s with the next epoch.
    @Test func failoverAfterACleanStopAndAfterALostLeader() async throws {
        try await Self.withTwoNodes { server, a, aj, b, bj in
            let clock = ContinuousClock()
            let log = LeadershipLog()
            let electorA = LeaderElector(lease: a, logger: Logger(label: "a"))
            let electorB = LeaderElector(lease: b, logger: Logger(label: "b"))
            let runA = Task { await electorA.run { l in log.append("a", l) } }
            try await Self.waitUntil(.seconds(5)) { electorA.leadership.isLeader }
            let runB = Task { await electorB.run { l in log.append("b", l) } }
            try await Self.waitUntil(.seconds(5)) { electorB.leadership.leader == "a" }
            #expect(!electorB.leadership.isLeader)

            let stopped = clock.now
            runA.cancel()
            await runA.value
            try await Self.waitUntil(.seconds(3)) { electorB.leadership.isLeader }
            let cleanFailover = clock.now - stopped
            #expect(cleanFailover < .seconds(1), "clean failover took \(cleanFailover)")
            #expect(electorB.leadership.epoch == 2)

            // b loses its database: it must step down by itself, and a new elector for a takes over.
            let electorA2 = LeaderElector(lease: a, logger: Logger(label: "a2"))
            let runA2 = Task { await electorA2.run { l in log.append("a2", l) } }
            let lost = clock.now
            bj.database.close()
            try await Self.waitUntil(.seconds(8)) { !electorB.leadership.isLeader }
            let steppedDown = clock.now - lost
            try await Self.waitUntil(.seconds(12)) { electorA2.leadership.isLeader }
            let crashFailover = clock.now - lost
            #expect(steppedDown < .seconds(6), "b stepped down after \(steppedDown)")
            #expect(crashFailover < .seconds(10), "crash failover took \(crashFailover)")
            #expect(electorA2.leadership.epoch == 3)
            // Never two leaders: b stepped down before a2 led.
            let events = log.entries
            let bDown = try #require(events.last { $0.0 == "b" && !$0.1.isLeader })
            let a2Up = try #require(events.first { $0.0 == "a2" && $0.1.isLeader })
            #expect(bDown.2 < a2Up.2)
            runB.cancel()
            runA2.cancel()
            await runB.value
            await runA2.value
        }
    }

    /// Nodes a and b on a fresh server, each with its own pool (closed afterwards).
    static func withTwoNodes(
        _ body: (TestPostgres, ClusterLease, ClusterJournal, ClusterLease, ClusterJournal) async throws -> Void
    ) async throws {
        try await withPostgres { server in
            let (a, aj) = try await lease(server, node: "a")
            let (b, bj) = try await lease(server, node: "b")
            defer {
                aj.database.close()
                bj.database.close()
            }
            try await body(server, a, aj, b, bj)
        }
    }

    static func waitUntil(_ limit: Duration, _ condition: () -> Bool) async throws {
        let clock = ContinuousClock()
        let end = clock.now + limit
        while !condition() {
            guard clock.now < end else { throw TestPostgresError("condition not met within \(limit)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Every leadership change electors reported, with when.
final class LeadershipLog: Sendable {
    private let log = Mutex<[(String, Leadership, ContinuousClock.Instant)]>([])
    var entries: [(String, Leadership, ContinuousClock.Instant)] { log.withLock { $0 } }
    func append(_ node: String, _ leadership: Leadership) {
        let now = ContinuousClock().now
        log.withLock { $0.append((node, leadership, now)) }
    }
}
