import NIOCore
import Synchronization

/// A value set once, awaited by one task until a deadline or its cancellation, whichever
/// comes first: a reply to a stage call, or a member slot becoming free.
final class Rendezvous<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiter: CheckedContinuation<Value, Never>?
    }
    private let state = Mutex(State())

    /// Sets the value; false when it was already set (the first value wins).
    @discardableResult
    func resolve(_ value: Value) -> Bool {
        let waiter: CheckedContinuation<Value, Never>?? = state.withLock { state in
            guard state.value == nil else { return .none }
            state.value = value
            defer { state.waiter = nil }
            return .some(state.waiter)
        }
        guard case .some(let continuation) = waiter else { return false }
        continuation?.resume(returning: value)
        return true
    }

    /// The value, `timedOut` once `deadline` passes, or `cancelled` when the waiting task is
    /// cancelled. With `eventLoop` the deadline is a task scheduled there (cheaper than a
    /// sleeping task on the hot path of a stage call).
    func wait(
        until deadline: ContinuousClock.Instant, timedOut: Value, cancelled: Value, on eventLoop: (any EventLoop)? = nil
    ) async -> Value {
        let cancelTimer: @Sendable () -> Void
        if let eventLoop {
            let left = deadline - ContinuousClock.now
            let nanoseconds = max(
                0, left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000)
            let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { self.resolve(timedOut) }
            cancelTimer = { scheduled.cancel() }
        } else {
            let timer = Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                if !Task.isCancelled { self.resolve(timedOut) }
            }
            cancelTimer = { timer.cancel() }
        }
        defer { cancelTimer() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: Value? = state.withLock { state in
                    if let value = state.value { return value }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            self.resolve(cancelled)
        }
    }
}
