import NIOPosix

/// Coalesces outbox wake-ups while a connection processes one read.
///
/// A burst of publishes read in one go would otherwise wake each subscriber's event loop
/// once per event (an eventfd write and a context switch each). While a batch is open on
/// this thread, outboxes that need draining are collected and woken once, when the read
/// has been processed.
final class WakeupBatch: @unchecked Sendable {
    // Each instance lives in one thread's slot and is only touched by that thread.
    private static let current = ThreadSpecificVariable<WakeupBatch>()
    private var pending: [Outbox] = []

    /// Runs `body` with a batch open on this thread, then wakes what it collected.
    static func collect(_ body: () -> Void) {
        let batch =
            current.currentValue
            ?? {
                let fresh = WakeupBatch()
                current.currentValue = fresh
                return fresh
            }()
        let outer = batch.open
        batch.open = true
        body()
        batch.open = outer
        guard !outer else { return }
        let woken = batch.pending
        batch.pending.removeAll(keepingCapacity: true)
        for outbox in woken { outbox.wake() }
    }

    private var open = false

    /// Defers `outbox`'s wake-up when a batch is open on this thread; false otherwise.
    static func deferWake(_ outbox: Outbox) -> Bool {
        guard let batch = current.currentValue, batch.open else { return false }
        batch.pending.append(outbox)
        return true
    }
}
