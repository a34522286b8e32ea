import Foundation
import Logging
import Synchronization
import Testing
import TradewireCluster

/// Calls handed through the database to the node that serves them (a follower's
/// `run_pipeline` to the leader), against a real PostgreSQL.
@Suite(.serialized)
struct ClusterCallsTests {
    /// Nodes a (serving) and b (calling), each with its own pool, on one fresh server.
    static func withTwoNodes(_ body: (TestPostgres, ClusterCalls, ClusterCalls) async throws -> Void) async throws {
        try await withPostgres { server in
            let a = ClusterJournal(database: server.database(label: "a"), nodeID: "a", logger: Logger(label: "a"))
            let b = ClusterJournal(database: server.database(label: "b"), nodeID: "b", logger: Logger(label: "b"))
            defer {
                a.database.close()
                b.database.close()
            }
            try await a.migrate()
            let callsA = ClusterCalls(
                database: a.database, nodeID: "a", pollInterval: .milliseconds(200), logger: Logger(label: "a"))
            let callsB = ClusterCalls(
                database: b.database, nodeID: "b", pollInterval: .milliseconds(200), logger: Logger(label: "b"))
            let listening = [Task { await callsA.listen() }, Task { await callsB.listen() }]
            defer { for task in listening { task.cancel() } }
            try await body(server, callsA, callsB)
        }
    }

    /// Each call is answered with its own params by the serving node, at most `concurrency`
    /// at a time, with the caller's deadline counted down; answered rows are deleted.
    @Test func callsAreAnsweredByTheServingNodeAndDeleted() async throws {
        try await Self.withTwoNodes { server, a, b in
            let running = Mutex((now: 0, most: 0))
            let remainings = Mutex<[Duration]>([])
            let serving = Task {
                await a.serve(kinds: ["run_pipeline"], epoch: 1, concurrency: 3) { call in
                    running.withLock { state in
                        state.now += 1
                        state.most = max(state.most, state.now)
                    }
                    remainings.withLock { $0.append(call.remaining) }
                    try? await Task.sleep(for: .milliseconds(50))
                    running.withLock { $0.now -= 1 }
                    return ClusterCallReply(
                        json: #"{"echo":\#(call.params),"from":"\#(call.fromNode)"}"#, isError: false)
                }
            }
            defer { serving.cancel() }
            let replies = try await withThrowingTaskGroup(of: (Int, ClusterCallReply).self) { group in
                for i in 0..<12 {
                    group.addTask {
                        (i, try await b.submit(kind: "run_pipeline", params: #"{"n":\#(i)}"#, timeout: .seconds(10)))
                    }
                }
                var replies: [Int: ClusterCallReply] = [:]
                for try await (i, reply) in group { replies[i] = reply }
                return replies
            }
            #expect(replies.count == 12)
            for (i, reply) in replies {
                #expect(reply == ClusterCallReply(json: #"{"echo":{"n":\#(i)},"from":"b"}"#, isError: false))
            }
            #expect(running.withLock { $0.most } <= 3)
            #expect(running.withLock { $0.most } >= 2)
            // The deadline counts from the submit: what the server saw is under 10 s, and not much under.
            for remaining in remainings.withLock({ $0 }) {
                #expect(remaining <= .seconds(10) && remaining > .seconds(8))
            }
            #expect(try server.psql("SELECT count(*) FROM tw_calls") == "0")
            // An error answer travels as an error.
            let failing = Task {
                await a.serve(kinds: ["other"], epoch: 1) { _ in
                    ClusterCallReply(json: #"{"code":-32011,"message":"late"}"#, isError: true)
                }
            }
            defer { failing.cancel() }
            let error = try await b.submit(kind: "other", params: "{}", timeout: .seconds(5))
            #expect(error == ClusterCallReply(json: #"{"code":-32011,"message":"late"}"#, isError: true))
        }
    }

    /// Nobody serves: the call is withdrawn at its deadline and never runs later; a full
    /// table refuses new calls (nothing recorded).
    @Test func anUnclaimedCallIsWithdrawnAtItsDeadlineAndTheTableIsBounded() async throws {
        try await Self.withTwoNodes { server, a, b in
            let clock = ContinuousClock()
            let started = clock.now
            do {
                _ = try await b.submit(kind: "run_pipeline", params: "{}", timeout: .milliseconds(600))
                Issue.record("an unserved call was answered")
            } catch let error as ClusterError {
                #expect(error.kind == .timedOut)
                #expect(error.message.contains("withdrawn unrun"))
            }
            let waited = clock.now - started
            #expect(waited >= .milliseconds(600) && waited < .seconds(3), "gave up after \(waited)")
            #expect(try server.psql("SELECT count(*) FROM tw_calls") == "0")
            // A node that starts serving afterwards runs nothing.
            let ran = CallCount()
            let serving = Task {
                await a.serve(kinds: ["run_pipeline"], epoch: 1) { _ in
                    ran.add()
                    return ClusterCallReply(json: "{}", isError: false)
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            serving.cancel()
            await serving.value
            #expect(ran.value == 0)

            // A full table: maximumOpen unanswered calls (of a kind nobody serves).
            try server.psql(
                """
                INSERT INTO tw_calls (kind, from_node, params, deadline_at)
                SELECT 'stuck', 'x', '{}', clock_timestamp() + interval '1 hour'
                FROM generate_series(1, \(ClusterCalls.maximumOpen))
                """)
            do {
                _ = try await b.submit(kind: "run_pipeline", params: "{}", timeout: .seconds(5))
                Issue.record("a call beyond the bound was taken")
            } catch let error as ClusterError {
                #expect(error.kind == .overloaded)
            }
            #expect(try server.psql("SELECT count(*) FROM tw_calls") == "\(ClusterCalls.maximumOpen)")
        }
    }

    /// The leader running a call is lost: the next leader answers the call with an error and
    /// never runs it again; the old leader's late answer is dropped.
    @Test func aCallOfALostLeaderIsAnsweredByTheNextAndNeverRunTwice() async throws {
        try await Self.withTwoNodes { server, a, b in
            let ran = CallCount()
            let (gate, release) = AsyncStream.makeStream(of: Void.self)
            let oldLeader = Task {
                await a.serve(kinds: ["run_pipeline"], epoch: 1) { _ in
                    ran.add()
                    for await _ in gate { break }
                    return ClusterCallReply(json: #"{"late":true}"#, isError: false)
                }
            }
            let caller = Task { try await b.submit(kind: "run_pipeline", params: "{}", timeout: .seconds(20)) }
            try await ClusterLeaseTests.waitUntil(.seconds(5)) { ran.value == 1 }
            oldLeader.cancel()  // it lost the lead: it claims nothing more

            let lost = ClusterCallReply(json: #"{"code":-32003,"message":"leader lost"}"#, isError: true)
            let newLeader = ClusterCalls(
                database: server.database(label: "c"), nodeID: "c", pollInterval: .milliseconds(200),
                logger: Logger(label: "c"))
            defer { newLeader.database.close() }
            #expect(try await newLeader.failOrphans(kinds: ["run_pipeline"], before: 2, reply: lost) == 1)
            #expect(try await caller.value == lost)
            let serving = Task {
                await newLeader.serve(kinds: ["run_pipeline"], epoch: 2) { _ in
                    ran.add()
                    return ClusterCallReply(json: "{}", isError: false)
                }
            }
            // The old leader's run finishes now; its answer finds nothing to answer.
            release.yield()
            await oldLeader.value
            try await Task.sleep(for: .milliseconds(500))
            serving.cancel()
            await serving.value
            #expect(ran.value == 1)
            #expect(try server.psql("SELECT count(*) FROM tw_calls WHERE reply LIKE '%late%'") == "0")
        }
    }
}

/// How many calls a test's serving node ran.
final class CallCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}
