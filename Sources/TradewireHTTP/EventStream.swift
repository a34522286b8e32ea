import DequeModule
import Synchronization
import TradewireBus

/// One `/events` client's queue. The bus hands events in (under its delivery lock, so in seq
/// order, and never waiting); the stream's writer takes them out and writes them as
/// Server-Sent Events.
///
/// It holds at most `budget` bytes of events. A stream that falls further behind is ended
/// after what it holds (never blocking the bus): its client reconnects with `Last-Event-ID`
/// and resumes from the journal. At least one event is always accepted, so every
/// reconnection makes progress.
final class EventStream: Sendable {
    enum Item: Sendable {
        case event(Event)
        /// Seqs the replay could not deliver (older than anything kept).
        case gap(ReplayGap)
    }

    /// Why a stream ends.
    enum End: Sendable, Equatable {
        /// Its client fell more than the budget behind.
        case behind
        /// Its replay stopped short (the journal's replay limit): a reconnection continues it.
        case replayLimit
        /// The daemon is stopping.
        case shutdown
    }

    /// What the writer gets.
    enum Take: Sendable {
        case items([Item])
        /// Nothing arrived within the wait: time for a keep-alive.
        case idle
        /// The last items, then the end.
        case end([Item], End)
    }

    private struct State {
        var items: Deque<Item> = []
        var bytes = 0
        var accepted = 0
        var end: End?
        var waiter: (token: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextToken = 0

        var isReady: Bool { !items.isEmpty || end != nil }

        mutating func takeWaiter(token: Int? = nil) -> CheckedContinuation<Void, Never>? {
            guard let waiter, token == nil || waiter.token == token else { return nil }
            self.waiter = nil
            return waiter.continuation
        }
    }

    let budget: Int
    private let state = Mutex(State())

    init(budget: Int) {
        self.budget = budget
    }

    /// Queues an event (the bus's synchronous handler: quick, never blocking).
    func enqueue(_ event: Event) {
        let wake: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.end == nil else { return nil }
            let size = event.knownOrEstimatedJSONBytes + 32
            if state.bytes + size > budget && !state.items.isEmpty {
                state.end = .behind
            } else {
                state.items.append(.event(event))
                state.bytes += size
                state.accepted += 1
            }
            return state.takeWaiter()
        }
        wake?.resume()
    }

    /// The replay could not deliver `gap`. After replayed events that means the journal's
    /// replay limit stopped it (the rest is still there): the stream ends after them and
    /// the reconnection resumes. Before any event, the seqs are gone: the client is told.
    func gap(_ gap: ReplayGap) {
        let wake: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.end == nil else { return nil }
            if state.accepted > 0 {
                state.end = .replayLimit
            } else {
                state.items.append(.gap(gap))
            }
            return state.takeWaiter()
        }
        wake?.resume()
    }

    /// Ends the stream after what it holds (nothing more is accepted).
    func finish(_ end: End) {
        let wake: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.end == nil { state.end = end }
            return state.takeWaiter()
        }
        wake?.resume()
    }

    /// Bytes of events held now.
    var queuedBytes: Int { state.withLock { $0.bytes } }

    /// Everything held, waiting up to `timeout` for something to arrive (or the task to be
    /// cancelled: then `.idle`, and the next write finds the client gone).
    func take(waitingUpTo timeout: Duration) async -> Take {
        if let ready = takeReady() { return ready }
        let token = state.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.wake(token)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    guard !state.isReady && !Task.isCancelled else { return true }
                    state.waiter = (token, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(token)
        }
        timer.cancel()
        return takeReady() ?? .idle
    }

    private func wake(_ token: Int) {
        state.withLock { $0.takeWaiter(token: token) }?.resume()
    }

    private func takeReady() -> Take? {
        state.withLock { state in
            guard state.isReady else { return nil }
            let items = Array(state.items)
            state.items.removeAll()
            state.bytes = 0
            if let end = state.end { return .end(items, end) }
            return .items(items)
        }
    }
}
