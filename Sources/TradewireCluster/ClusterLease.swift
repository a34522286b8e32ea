import Logging
import PostgresNIO
import Synchronization
import TradewireJSON

/// Who leads: the lease row as one node sees it.
public struct Leadership: Sendable, Equatable {
    /// The leading node (nil: nobody holds a live lease).
    public var leader: String?
    public var epoch: Int
    /// True when this node leads.
    public var isLeader: Bool

    public init(leader: String?, epoch: Int, isLeader: Bool) {
        self.leader = leader
        self.epoch = epoch
        self.isLeader = isLeader
    }

    public static let unknown = Leadership(leader: nil, epoch: 0, isLeader: false)
}

/// The leader's lease in `tw_lease`, timed by the database's clock, with a fencing epoch:
/// every acquisition after an expiry or a release takes the next epoch, and a leader's
/// appends carry its epoch (``ClusterJournal/append(_:batchKey:epoch:)`` refuses a stale one).
public struct ClusterLease: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String

    public init(database: ClusterDatabase, nodeID: String) {
        self.database = database
        self.nodeID = nodeID
    }

    /// Takes the lease when it is free or expired, renews it when `epoch` still holds it.
    /// Returns the epoch held (nil: another node holds a live lease).
    public func acquireOrRenew(holding epoch: Int?, for duration: Duration, timeout: Duration)
        async throws(ClusterError)
        -> Int?
    {
        let seconds = duration.inSeconds
        let mine = Int64(epoch ?? -1)
        let node = nodeID
        let rows = try await database.query(
            """
            UPDATE tw_lease SET
                epoch = CASE WHEN holder = \(node) AND epoch = \(mine) AND expires_at > clock_timestamp()
                    THEN epoch ELSE epoch + 1 END,
                acquired_at = CASE WHEN holder = \(node) AND epoch = \(mine) AND expires_at > clock_timestamp()
                    THEN acquired_at ELSE clock_timestamp() END,
                holder = \(node),
                expires_at = clock_timestamp() + make_interval(secs => \(seconds))
            WHERE id = 1 AND ((holder = \(node) AND epoch = \(mine) AND expires_at > clock_timestamp())
                OR holder IS NULL OR expires_at <= clock_timestamp())
            RETURNING epoch
            """, "renewing the lease", timeout: timeout)
        guard let row = rows.first else { return nil }
        return try? row.decode(Int.self)
    }

    /// Gives the lease up (a clean stop) and wakes the other nodes to take it at once.
    public func release(epoch: Int, timeout: Duration = .seconds(2)) async throws(ClusterError) {
        let node = nodeID
        let mine = Int64(epoch)
        _ = try await database.query(
            """
            WITH released AS (UPDATE tw_lease SET holder = NULL, expires_at = '-infinity'
                WHERE id = 1 AND holder = \(node) AND epoch = \(mine) RETURNING 1)
            SELECT pg_notify('tw_lease', 'released') FROM released
            """, "releasing the lease", timeout: timeout)
    }

    /// The lease as stored (leader nil when expired or released).
    public func current(timeout: Duration = .seconds(2)) async throws(ClusterError) -> Leadership {
        let rows = try await database.query(
            "SELECT CASE WHEN expires_at > clock_timestamp() THEN holder END, epoch FROM tw_lease WHERE id = 1",
            "reading the lease", timeout: timeout)
        guard let row = rows.first, let (holder, epoch) = try? row.decode((String?, Int).self) else { return .unknown }
        return Leadership(leader: holder, epoch: epoch, isLeader: holder == nodeID)
    }
}

/// Keeps this node's view of leadership: renews the lease every `renewEvery` while leading,
/// tries to take it every `tryEvery` (and at once when the leader releases it) while not.
///
/// A leader steps down on its own clock: when no renewal succeeded by the time its lease
/// could have expired (the last renewal's send time + the lease − `safetyMargin`), it calls
/// `onChange` with `isLeader == false` before anyone else can take over, whether or not the
/// database answers (a blackholed link times out).
public final class LeaderElector: Sendable {
    public let lease: ClusterLease
    public let leaseDuration: Duration
    public let renewEvery: Duration
    public let tryEvery: Duration
    public let safetyMargin: Duration
    private let logger: Logger
    private let state = Mutex<(leadership: Leadership, woken: Bool)>((.unknown, false))

    /// PROTOCOL §13: renewed every 2 s, expiring after 6 s.
    public init(
        lease: ClusterLease, leaseDuration: Duration = .seconds(6), renewEvery: Duration = .seconds(2),
        tryEvery: Duration = .seconds(1), safetyMargin: Duration = .seconds(1), logger: Logger
    ) {
        self.lease = lease
        self.leaseDuration = leaseDuration
        self.renewEvery = renewEvery
        self.tryEvery = tryEvery
        self.safetyMargin = safetyMargin
        self.logger = logger
    }

    /// This node's view now.
    public var leadership: Leadership { state.withLock { $0.leadership } }

    /// Runs until cancelled; `onChange` sees every change of leader or epoch, in order.
    /// When cancelled while leading, the lease is released (a clean stop: another node leads
    /// within a second).
    public func run(onChange: @escaping @Sendable (Leadership) async -> Void) async {
        let clock = ContinuousClock()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listenForRelease() }
            group.addTask {
                var held: (epoch: Int, validUntil: ContinuousClock.Instant)?
                while !Task.isCancelled {
                    let sentAt = clock.now
                    // A leader's attempt must end before its lease could run out.
                    let timeout: Duration =
                        if let held { max(.milliseconds(100), min(self.renewEvery, held.validUntil - sentAt)) } else {
                            self.renewEvery
                        }
                    var next = Leadership.unknown
                    do {
                        if let epoch = try await self.lease.acquireOrRenew(
                            holding: held?.epoch, for: self.leaseDuration, timeout: timeout)
                        {
                            held = (epoch, sentAt + self.leaseDuration - self.safetyMargin)
                            next = Leadership(leader: self.lease.nodeID, epoch: epoch, isLeader: true)
                        } else {
                            held = nil
                            next = try await self.lease.current(timeout: timeout)
                        }
                    } catch {
                        self.logger.warning("cluster.lease.attempt_failed", metadata: ["error": "\(error)"])
                        if let current = held, clock.now < current.validUntil {
                            next = Leadership(leader: self.lease.nodeID, epoch: current.epoch, isLeader: true)
                        } else {
                            if held != nil {
                                self.logger.error("cluster.lease.lost", metadata: ["lease.epoch": "\(held!.epoch)"])
                            }
                            held = nil
                            next = Leadership(leader: nil, epoch: self.leadership.epoch, isLeader: false)
                        }
                    }
                    let previous = self.state.withLock { state in
                        defer { state.leadership = next }
                        return state.leadership
                    }
                    if previous != next { await onChange(next) }
                    // Leading: renew on time, and step down at the local deadline even if
                    // the renewal hangs. Following: try again soon, or when woken.
                    if let current = held {
                        let wait = min(self.renewEvery, current.validUntil - clock.now)
                        try? await Task.sleep(for: max(.zero, wait))
                    } else {
                        await self.sleepUnlessWoken(self.tryEvery)
                    }
                }
                if let current = held {
                    try? await self.lease.release(epoch: current.epoch)
                    self.state.withLock {
                        $0.leadership = Leadership(leader: nil, epoch: current.epoch, isLeader: false)
                    }
                    await onChange(self.leadership)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Sleeps `duration` in short slices, ending early when the leader released the lease.
    private func sleepUnlessWoken(_ duration: Duration) async {
        let clock = ContinuousClock()
        let end = clock.now + duration
        while clock.now < end, !Task.isCancelled {
            let woken = state.withLock { state in
                defer { state.woken = false }
                return state.woken
            }
            if woken { return }
            try? await Task.sleep(for: min(.milliseconds(25), end - clock.now))
        }
    }

    private func listenForRelease() async {
        while !Task.isCancelled {
            do {
                try await lease.database.client.withConnection { connection in
                    try await connection.listen(on: "tw_lease") { notifications in
                        for try await _ in notifications { self.wakeNow() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func wakeNow() {
        state.withLock { $0.woken = true }
    }
}
