import Synchronization

/// The open `/events` streams: admission under the configured maximum, and the end of
/// every stream when the daemon stops.
final class EventStreams: Sendable {
    private struct State {
        var live: [Int: EventStream] = [:]
        var nextID = 1
        var closed = false
    }
    private let state = Mutex(State())
    let maximum: Int

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// A new stream and its id, or nil when `maximum` are open or the daemon is stopping.
    func open(budget: Int) -> (id: Int, stream: EventStream)? {
        state.withLock { state in
            guard !state.closed, state.live.count < maximum else { return nil }
            let id = state.nextID
            state.nextID += 1
            let stream = EventStream(budget: budget)
            state.live[id] = stream
            return (id, stream)
        }
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.live.removeValue(forKey: id) }
    }

    /// True once ``closeAll()`` ran: the HTTP server's own graceful shutdown began.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Streams open now.
    var count: Int { state.withLock { $0.live.count } }

    /// Ends every stream after what it holds and refuses new ones (graceful shutdown).
    func closeAll() {
        let streams = state.withLock { state in
            state.closed = true
            return Array(state.live.values)
        }
        for stream in streams { stream.finish(.shutdown) }
    }
}
