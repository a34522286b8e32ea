import NIOCore
import Synchronization

/// A value set once, awaited by one task until a deadline or its cancellation, whichever
/// comes first: a reply to a stage call, or a member slot becoming free.
final class Rendezvous<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiter: CheckedContinuation<Value, Never>?
        /// The deadline armed on an event loop (cancelled by the first value).
        var timer: Scheduled<Void>?
    }
    private let state = Mutex(State())

    /// Sets the value; false when it was already set (the first value wins).
    @discardableResult
    func resolve(_ value: Value) -> Bool {
        let outcome: (waiter: CheckedContinuation<Value, Never>?, timer: Scheduled<Void>?)? = state.withLock { state in
            guard state.value == nil else { return nil }
            state.value = value
            defer {
                state.waiter = nil
                state.timer = nil
            }
            return (state.waiter, state.timer)
        }
        guard let outcome else { return false }
        outcome.timer?.cancel()
        outcome.waiter?.resume(returning: value)
        return true
    }

    /// Arms the deadline as a task on `eventLoop`. Called on that loop, this costs no
    /// wake-up; a reply read there cancels it just as cheaply.
    func arm(on eventLoop: any EventLoop, deadline: ContinuousClock.Instant, timedOut: Value) {
        let left = deadline - ContinuousClock.now
        let nanoseconds = max(
            0, left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000)
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { _ = self.resolve(timedOut) }
        let settled = state.withLock { state in
            if state.value != nil { return true }
            state.timer = scheduled
            return false
        }
        if settled { scheduled.cancel() }
    }

    /// The value (armed elsewhere with a deadline), or `cancelled` when the waiting task is
    /// cancelled.
    func wait(cancelled: Value) async -> Value {
        await withTaskCancellationHandler {
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

    /// The value, `timedOut` once `deadline` passes, or `cancelled` when the waiting task is
    /// cancelled.
    func wait(until deadline: ContinuousClock.Instant, timedOut: Value, cancelled: Value) async -> Value {
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { self.resolve(timedOut) }
        }
        defer { timer.cancel() }
        return await wait(cancelled: cancelled)
    }
}
