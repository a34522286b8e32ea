import Foundation
import Logging
import PostgresNIO
import Testing
import TradewireCluster
import TradewireJSON

@Suite(.serialized)
struct ClusterNodesTests {
    @Test func aLiveNodeIDIsUniqueAndFreedByAStopOrACrash() async throws {
        try await withPostgres { server in
            let database = server.database()
            defer { database.close() }
            try await ClusterJournal(database: database, nodeID: "a", logger: Logger(label: "t")).migrate()
            let first = ClusterNodes(database: database, nodeID: "host-1")
            try await first.register()
            // A live twin: its heartbeat goes on while the newcomer waits.
            let heartbeats = Task {
                while !Task.isCancelled {
                    try? await first.heartbeat(deliveredSeq: 42)
                    try? await Task.sleep(for: .milliseconds(300))
                }
            }
            let twin = ClusterNodes(database: database, nodeID: "host-1")
            do {
                try await twin.register()
                Issue.record("a second live node took the same id")
            } catch let error as ClusterError {
                #expect(error.kind == .duplicateNode)
            }
            heartbeats.cancel()
            _ = await heartbeats.value
            let listed = try await first.list()
            #expect(listed.map(\.nodeID) == ["host-1"])
            #expect(listed[0].deliveredSeq == 42 && listed[0].live)
            try await first.deregister()
            #expect(try await first.list()[0].live == false)
            try await twin.register()  // a restart after a clean stop: at once
            #expect(try await twin.list()[0].live)
            // A crash (no heartbeat, no deregistration): the restart waits out the window.
            let clock = ContinuousClock()
            let restarted = clock.now
            let third = ClusterNodes(database: database, nodeID: "host-1")
            try await third.register()
            let waited = clock.now - restarted
            #expect(waited > .seconds(3) && waited < .seconds(9), "waited \(waited)")
        }
    }

    /// A transaction left open elsewhere pins xmin (vacuum cannot clean up behind it); the
    /// append's cost must not grow with the dead rows that piles up (a counter row did,
    /// to 1 k tx/s). Measured as appends per second before and while the snapshot is held,
    /// with updates of tw_state churning dead rows meanwhile.
    @Test func aPinnedXminLeavesAppendThroughputFlat() async throws {
        try await withPostgres { server in
            let database = server.database()
            defer { database.close() }
            let journal = ClusterJournal(database: database, nodeID: "a", logger: Logger(label: "t"))
            try await journal.migrate()
            @Sendable func rate(_ label: String, batches: Int) async throws -> Double {
                let clock = ContinuousClock()
                let start = clock.now
                for b in 0..<batches {
                    _ = try await journal.append(
                        (0..<10).map { ClusterJournalTests.draft("x", $0) }, batchKey: "\(label)-\(b)")
                    try await journal.saveState("churn", Array("{\"b\":\(b)}".utf8))
                }
                let elapsed = clock.now - start
                return Double(batches)
                    / elapsed.inSeconds
            }
            _ = try await rate("warm", batches: 100)
            let before = try await rate("before", batches: 600)
            let logger = Logger(label: "t")
            let during: Double = try await database.withConnection("pinning xmin", timeout: .seconds(120)) { pin in
                try await pin.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: logger)
                try await pin.query("SELECT count(*) FROM tw_events", logger: logger)
                let pinned = try await rate("during", batches: 1800)
                try await pin.query("COMMIT", logger: logger)
                return pinned
            }
            // Flat within the noise of a shared 2-core machine; a collapse is 10×.
            #expect(during > before * 0.4, "appends/s before \(before), with xmin pinned \(during)")
        }
    }
}
