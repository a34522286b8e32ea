import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Fires once, on SIGINT or SIGTERM (or ``fire()``); any number of tasks may wait for it.
final class StopSignal: Sendable {
    private struct State {
        var fired = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were parked.
        var cancelled: Set<Int> = []
        var sources: [any DispatchSourceSignal] = []
    }

    private let state = Mutex(State())

    /// True once fired.
    var isFired: Bool { state.withLock { $0.fired } }

    /// Takes SIGINT and SIGTERM over from their default action: each fires this signal.
    func installHandlers() {
        state.withLock { s in
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [weak self] in self?.fire() }
                source.resume()
                s.sources.append(source)
            }
        }
    }

    func fire() {
        let waiters = state.withLock { s in
            s.fired = true
            defer { s.waiters = [:] }
            return s.waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    /// Returns once fired, or when the waiting task is cancelled.
    func wait() async {
        let id = state.withLock { s in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.fired || s.cancelled.remove(id) != nil { return true }
                    s.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                guard let waiter = s.waiters.removeValue(forKey: id) else {
                    s.cancelled.insert(id)
                    return nil as CheckedContinuation<Void, Never>?
                }
                return waiter
            }
            waiter?.resume()
        }
    }
}
