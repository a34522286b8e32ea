import Foundation
import Logging
import PostgresNIO
import Synchronization
import TradewireJSON

/// A call as the node that serves it claimed it.
public struct ClusterCall: Sendable, Equatable {
    public var id: Int
    public var kind: String
    /// The node that handed it over.
    public var fromNode: String
    /// The caller's parameters (JSON text).
    public var params: String
    /// What was left of the caller's deadline when the call was claimed (by the database's
    /// clock, so the deadline counts from the original request on every node).
    public var remaining: Duration
}

/// An answer to a handed-off call: a JSON-RPC result, or an error object, as JSON text.
public struct ClusterCallReply: Sendable, Equatable {
    public var json: String
    public var isError: Bool

    public init(json: String, isError: Bool) {
        self.json = json
        self.isError = isError
    }
}

/// Calls handed through the database to the node that can answer them (PROTOCOL §13): a
/// follower's non-dry `run_pipeline` is inserted into `tw_calls`, the leader claims it
/// (`FOR UPDATE SKIP LOCKED`), runs it under what is left of the caller's deadline, and
/// writes the reply, which the caller reads and deletes.
///
/// `NOTIFY tw_calls` (a trigger, on every new call and every answer) only wakes the two
/// sides; both also poll. A call nobody claimed by its deadline is withdrawn by its caller
/// (so it never runs late); a call claimed under an epoch that lost the lease is answered
/// with an error by the next leader (its iteration was aborted at the takeover) and never
/// run again. The table stays small: at most ``maximumOpen`` unanswered calls, and rows
/// answered or abandoned are deleted after ``retention``.
public final class ClusterCalls: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String
    /// Unanswered calls the table holds at most; a call beyond it is refused (`.overloaded`).
    public static let maximumOpen = 1000
    /// How long a caller waits past its deadline for the serving node's own answer (which
    /// is a timeout error, written by the node that ran it).
    public static let answerGrace: Duration = .seconds(5)
    /// Answered and abandoned rows are deleted this long after their answer or deadline.
    public static let retention: Duration = .seconds(300)
    private let pollInterval: Duration
    private let logger: Logger
    private let waiters = Mutex<[UUID: AsyncStream<Void>.Continuation]>([:])

    public init(database: ClusterDatabase, nodeID: String, pollInterval: Duration = .milliseconds(500), logger: Logger)
    {
        self.database = database
        self.nodeID = nodeID
        self.pollInterval = pollInterval
        self.logger = logger
    }

    // MARK: the caller's side

    /// Hands a call over and waits for its answer. Throws `.overloaded` (nothing recorded)
    /// when ``maximumOpen`` calls wait already, `.unavailable` when the database cannot be
    /// reached, `.timedOut` when no node answered: withdrawn unrun when nobody claimed it by
    /// `timeout`, or claimed and unanswered by `timeout` plus ``answerGrace``.
    ///
    /// `target`: the only node that may serve it (nil: any node serving `kind`); `grace`:
    /// how long to wait past the deadline for a claimed call's answer; `durable: false`:
    /// its rows are written without waiting for the disk (a call that may run again after a
    /// database crash, such as a stage call; never a trade).
    public func submit(
        kind: String, params: String, timeout: Duration, target: String? = nil, grace: Duration = answerGrace,
        durable: Bool = true
    ) async throws(ClusterError) -> ClusterCallReply {
        let clock = ContinuousClock()
        let giveUp = clock.now + timeout + grace
        let node = nodeID
        let seconds = timeout.inSeconds
        let limit = Self.maximumOpen
        let rows = try await write(
            durable,
            """
            INSERT INTO tw_calls (kind, from_node, params, deadline_at, target_node)
            SELECT \(kind), \(node), \(params), clock_timestamp() + make_interval(secs => \(seconds)), \(target)
            WHERE (SELECT count(*) FROM tw_calls WHERE done_at IS NULL) < \(limit)
            RETURNING id
            """, "handing \(kind) over")
        guard let row = rows.first else {
            throw ClusterError(.overloaded, "\(limit) handed-over calls wait already; try again later")
        }
        let id: Int
        do { id = try row.decode(Int.self) } catch {
            throw ClusterError(.database, "handing \(kind) over: unexpected result (\(error))")
        }
        return try await withWakeups { wakes throws(ClusterError) in
            var claimedBy: String?
            var lastFailure: ClusterError?
            while true {
                do throws(ClusterError) {
                    if let reply = try await poll(id, timeout: timeout, durable: durable, claimedBy: &claimedBy) {
                        return reply
                    }
                    lastFailure = nil
                } catch  where error.kind == .unavailable {
                    lastFailure = error  // the database may come back before the deadline
                }
                if clock.now >= giveUp {
                    if let claimedBy {
                        throw ClusterError(
                            .timedOut,
                            "node \(claimedBy) took the call but did not answer within \(timeout) (its iteration, if it ran, is in the history)"
                        )
                    }
                    throw lastFailure ?? ClusterError(.timedOut, "no leader took the call within \(timeout)")
                }
                await wakes.next()
            }
        }
    }

    /// One look at call `id`: its answer (the row is then deleted), or nil to wait on.
    private func poll(_ id: Int, timeout: Duration, durable: Bool, claimedBy: inout String?) async throws(ClusterError)
        -> ClusterCallReply?
    {
        let rows = try await database.query(
            """
            SELECT reply, is_error, claimed_by, deadline_at <= clock_timestamp() FROM tw_calls WHERE id = \(id)
            """, "reading call \(id)")
        guard let row = rows.first else {
            throw ClusterError(.database, "call \(id) is gone from tw_calls before its answer")
        }
        let (reply, isError, claimer, expired): (String?, Bool?, String?, Bool)
        do { (reply, isError, claimer, expired) = try row.decode((String?, Bool?, String?, Bool).self) } catch {
            throw ClusterError(.database, "reading call \(id): unexpected row (\(error))")
        }
        if let reply {
            _ = try? await write(durable, "DELETE FROM tw_calls WHERE id = \(id)", "deleting call \(id)")
            return ClusterCallReply(json: reply, isError: isError ?? false)
        }
        claimedBy = claimer
        guard expired, claimer == nil else { return nil }
        // Nobody took it in time: withdraw it, unless a node claims it this very moment.
        let withdrawn = try await write(
            durable, "DELETE FROM tw_calls WHERE id = \(id) AND claimed_by IS NULL RETURNING id",
            "withdrawing call \(id)")
        if !withdrawn.isEmpty {
            throw ClusterError(.timedOut, "no leader took the call within \(timeout); it was withdrawn unrun")
        }
        return nil
    }

    // MARK: the serving side

    /// Claims calls of `kinds` and runs up to `concurrency` of them at a time through
    /// `execute`, answering each under `epoch` (an answer from an epoch whose calls were
    /// already failed over is dropped). Runs until cancelled; a call being run then still
    /// gets its answer (its execution is not cancelled with the claiming). `durable` as for
    /// ``submit(kind:params:timeout:target:grace:durable:)``.
    public func serve(
        kinds: [String], epoch: Int, concurrency: Int = 4, durable: Bool = true,
        execute: @escaping @Sendable (ClusterCall) async -> ClusterCallReply
    ) async {
        let running = RunningCount()
        var failing = false
        var lastSweep = ContinuousClock.now - .seconds(3600)
        await withWakeups { wakes in
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    let free = concurrency - running.value.withLock { $0 }
                    if free > 0 {
                        do {
                            let calls = try await claim(kinds: kinds, epoch: epoch, limit: free, durable: durable)
                            if failing {
                                logger.notice("cluster.calls.claiming_again", metadata: ["calls.kinds": "\(kinds)"])
                            }
                            failing = false
                            for call in calls {
                                running.value.withLock { $0 += 1 }
                                group.addTask {
                                    // Unstructured: losing the lead stops the claiming, not a run under way.
                                    let reply = await Task { await execute(call) }.value
                                    await self.answer(call, epoch: epoch, reply, durable: durable)
                                    running.value.withLock { $0 -= 1 }
                                    self.wakeAll()
                                }
                            }
                        } catch {
                            if !failing {
                                logger.warning(
                                    "cluster.calls.claim_failed",
                                    metadata: ["calls.kinds": "\(kinds)", "error": "\(error)"])
                            }
                            failing = true
                        }
                    }
                    if ContinuousClock.now - lastSweep > .seconds(30) {
                        lastSweep = .now
                        try? await sweep()
                    }
                    await wakes.next()
                }
            }
        }
    }

    /// Claims up to `limit` waiting calls of `kinds`, oldest first, skipping rows another
    /// node is claiming.
    func claim(kinds: [String], epoch: Int, limit: Int, durable: Bool = true) async throws(ClusterError)
        -> [ClusterCall]
    {
        let node = nodeID
        let rows = try await write(
            durable,
            """
            UPDATE tw_calls SET claimed_by = \(node), claimed_epoch = \(epoch), claimed_at = clock_timestamp()
            WHERE id IN (
                SELECT id FROM tw_calls
                WHERE kind = ANY(\(kinds)) AND claimed_by IS NULL AND deadline_at > clock_timestamp()
                    AND (target_node IS NULL OR target_node = \(node))
                ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, kind, from_node, params,
                (extract(epoch FROM deadline_at - clock_timestamp()) * 1000)::bigint
            """, "claiming calls")
        do {
            return try rows.map { row in
                let (id, kind, from, params, remaining) = try row.decode((Int, String, String, String, Int).self)
                return ClusterCall(
                    id: id, kind: kind, fromNode: from, params: params, remaining: .milliseconds(max(0, remaining)))
            }.sorted { $0.id < $1.id }
        } catch {
            throw ClusterError(.database, "claiming calls: unexpected row (\(error))")
        }
    }

    /// Writes the answer of a call claimed under `epoch`, retrying while the database is
    /// away (up to the call's deadline plus the grace its caller waits).
    func answer(_ call: ClusterCall, epoch: Int, _ reply: ClusterCallReply, durable: Bool = true) async {
        let clock = ContinuousClock()
        let giveUp = clock.now + call.remaining + Self.answerGrace
        let node = nodeID
        while true {
            do {
                _ = try await write(
                    durable,
                    """
                    UPDATE tw_calls SET reply = \(reply.json), is_error = \(reply.isError), done_at = clock_timestamp()
                    WHERE id = \(call.id) AND claimed_by = \(node) AND claimed_epoch = \(epoch) AND done_at IS NULL
                    """, "answering call \(call.id)")
                return
            } catch {
                guard clock.now < giveUp, error.kind == .unavailable else {
                    logger.error(
                        "cluster.calls.answer_lost",
                        metadata: ["call.id": "\(call.id)", "call.from_node": "\(call.fromNode)", "error": "\(error)"])
                    return
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Answers `reply` to every call of `kinds` claimed under an epoch before `epoch` and not answered:
    /// its leader was lost, and the takeover aborted its iteration. Returns how many.
    public func failOrphans(kinds: [String], before epoch: Int, reply: ClusterCallReply) async throws(ClusterError)
        -> Int
    {
        let rows = try await database.query(
            """
            UPDATE tw_calls SET reply = \(reply.json), is_error = \(reply.isError), done_at = clock_timestamp()
            WHERE kind = ANY(\(kinds)) AND done_at IS NULL AND claimed_by IS NOT NULL AND claimed_epoch < \(epoch)
            RETURNING id
            """, "failing calls of lost leaders")
        return rows.count
    }

    /// A statement that changes `tw_calls`: committed to disk, or (not `durable`) without
    /// waiting for it.
    private func write(_ durable: Bool, _ query: PostgresQuery, _ action: String) async throws(ClusterError)
        -> [PostgresRow]
    {
        durable ? try await database.query(query, action) : try await database.queryWithoutFlush(query, action)
    }

    /// Deletes rows answered or abandoned more than ``retention`` ago (a caller that went
    /// away never deletes its own).
    func sweep() async throws(ClusterError) {
        let seconds = Self.retention.inSeconds
        _ = try await database.query(
            """
            DELETE FROM tw_calls
            WHERE coalesce(done_at, deadline_at) < clock_timestamp() - make_interval(secs => \(seconds))
            """, "sweeping old calls")
    }

    // MARK: wake-ups

    /// Keeps a `LISTEN tw_calls` connection open until cancelled, waking every waiter on
    /// each notification (and once on every reconnect, for what was missed meanwhile).
    public func listen() async {
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    try await connection.listen(on: "tw_calls") { notifications in
                        self.wakeAll()
                        for try await _ in notifications { self.wakeAll() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.info("cluster.calls.listen_lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func wakeAll() {
        for waiter in waiters.withLock({ Array($0.values) }) { waiter.yield() }
    }

    /// Runs `body` with a stream of wake-ups: every notification, and a poll every
    /// `pollInterval` whatever LISTEN does.
    private func withWakeups<T, Failure: Error>(
        _ body: (inout AsyncStream<Void>.Iterator) async throws(Failure) -> T
    ) async throws(Failure) -> T {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let key = UUID()
        waiters.withLock { $0[key] = continuation }
        let interval = pollInterval
        let poll = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                continuation.yield()
            }
        }
        defer {
            poll.cancel()
            waiters.withLock { _ = $0.removeValue(forKey: key) }
            continuation.finish()
        }
        var iterator = stream.makeAsyncIterator()
        return try await body(&iterator)
    }
}

/// The calls a serving node runs at the moment.
private final class RunningCount: Sendable {
    let value = Mutex(0)
}
