import Synchronization
import TradewireBus
import TradewireJSON

/// The live connections: admission under `--max-connections`, the drain that tells each
/// one the daemon is stopping, the count of deferred work, and dropped-event totals.
public final class ConnectionRegistry: Sendable {
    private struct State {
        var live: [Int: ServerConnection] = [:]
        var nextID = 1
        var droppedByClosed = 0
        var draining = false
        var work = 0
    }
    private let state = Mutex(State())
    let maximum: Int

    init(maximum: Int) {
        self.maximum = maximum
    }

    func makeConnectionID() -> Int {
        state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
    }

    /// Admits a connection unless `maximum` are already served.
    func admit(_ connection: ServerConnection) -> Bool {
        state.withLock { s in
            guard s.live.count < maximum else { return false }
            s.live[connection.id] = connection
            return true
        }
    }

    /// Forgets a closed connection, keeping its dropped-event count.
    func remove(_ connection: ServerConnection) {
        let dropped = connection.outbox.droppedTotal
        state.withLock { s in
            s.live[connection.id] = nil
            s.droppedByClosed += dropped
        }
    }

    var live: [ServerConnection] { state.withLock { Array($0.live.values) } }

    /// Connections served now.
    public var count: Int { state.withLock { $0.live.count } }

    /// Events dropped for slow subscribers, over the daemon's life.
    public var eventsDropped: Int {
        let (live, closed) = state.withLock { ($0.live.values.map { $0 }, $0.droppedByClosed) }
        return closed + live.reduce(0) { $0 + $1.outbox.droppedTotal }
    }

    /// True once a graceful stop began: new requests get -32000 (and `/healthz` answers 503).
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Enters draining and tells every connection why (once).
    func beginDrain(reason: String) {
        let connections: [ServerConnection]? = state.withLock { s in
            guard !s.draining else { return nil }
            s.draining = true
            return Array(s.live.values)
        }
        for connection in connections ?? [] {
            connection.notify(method: "shutdown", params: ["reason": JSONValue(reason)])
        }
    }

    /// Deferred requests running anywhere in the daemon.
    var pendingWork: Int { state.withLock { $0.work } }
    func workStarted() { state.withLock { $0.work += 1 } }
    func workFinished() { state.withLock { $0.work -= 1 } }
}
