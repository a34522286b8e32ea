import NIOCore
import NIOPosix
import TradewireBus

/// Coalesces event-loop wake-ups while one thread does a burst of work.
///
/// A burst of publishes read in one go, or a journal batch dispatched at once, would
/// otherwise wake each subscriber's event loop once per event and each publisher's once per
/// answer (an eventfd write and a context switch each). While a batch is open on this
/// thread, outboxes that need draining and tasks for event loops are collected, and each
/// event loop is woken once, when the burst is over.
final class WakeupBatch: @unchecked Sendable {
    // Each instance lives in one thread's slot and is only touched by that thread.
    private static let current = ThreadSpecificVariable<WakeupBatch>()
    private var pending: [Outbox] = []
    private var tasks: [(eventLoop: any EventLoop, task: @Sendable () -> Void)] = []
    private var open = false
    /// True while this thread drains outboxes at the end of a burst: a burst started by one
    /// of those drains (held input resumed) wakes its outboxes with tasks, so drains never
    /// nest more than one deep, however many connections are on the loop.
    private var drainingInline = false
    /// True from a read round's first read until the task that ends the round runs.
    private var roundOpen = false
    /// Journaled buses this round published to: they commit what waits when the round ends.
    private var roundCommits: [EventBus] = []

    /// This thread's batch (made on first use).
    private static var onThisThread: WakeupBatch {
        if let batch = current.currentValue { return batch }
        let batch = WakeupBatch()
        current.currentValue = batch
        return batch
    }

    /// Runs `body` with a batch open on this thread, then wakes what it collected.
    static func collect(_ body: () -> Void) {
        let batch = onThisThread
        let outer = batch.open
        batch.open = true
        body()
        batch.open = outer || batch.roundOpen
        guard !batch.open else { return }
        batch.flushCollected()
    }

    /// Wakes what the batch collected (it is closed).
    private func flushCollected() {
        let woken = pending
        pending.removeAll(keepingCapacity: true)
        // Outboxes of this thread's own event loop drain now (their bytes leave in this loop
        // iteration, not the next); the others get one task each.
        let inline = !drainingInline
        drainingInline = true
        for outbox in woken { outbox.wake(inline: inline) }
        drainingInline = !inline
        let tasks = self.tasks
        self.tasks.removeAll(keepingCapacity: true)
        Self.flush(tasks)
    }

    /// Runs `body` with a batch open on this event loop's thread that stays open until the
    /// loop has read every connection that was ready: it closes in a task queued now, which
    /// the loop runs after this round of reads. Fifty publishers each read once in a round
    /// wake a subscriber's loop once, not fifty times (Redis writes its replies in
    /// `beforeSleep` for the same reason).
    static func collectForReadRound(on eventLoop: any EventLoop, _ body: () -> Void) {
        let batch = onThisThread
        guard !batch.open else {
            body()
            return
        }
        batch.roundOpen = true
        collect(body)
        // `collect` left the batch open (the round's flag): close it after the round. The
        // round's journal batches commit first, inside it, so their answers and deliveries
        // leave with the rest.
        eventLoop.execute {
            batch.roundOpen = false
            while let bus = batch.roundCommits.popLast() { bus.commitWaitingEvents() }
            batch.open = false
            batch.flushCollected()
        }
    }

    /// Called by a journaled bus on each publish: true when this thread is in a read round,
    /// which then commits `bus`'s waiting events when it ends (so the journal's writer thread
    /// need not be woken).
    static func commitAtRoundEnd(_ bus: EventBus) -> Bool {
        guard let batch = current.currentValue, batch.roundOpen else { return false }
        if !batch.roundCommits.contains(where: { $0 === bus }) { batch.roundCommits.append(bus) }
        return true
    }

    /// Defers `outbox`'s wake-up when a batch is open on this thread; false otherwise.
    static func deferWake(_ outbox: Outbox) -> Bool {
        guard let batch = current.currentValue, batch.open else { return false }
        batch.pending.append(outbox)
        return true
    }

    /// Runs `task` on `eventLoop`: at the end of the open batch (one wake-up per event loop
    /// for all its tasks, in order), or now when none is open.
    static func execute(on eventLoop: any EventLoop, _ task: @escaping @Sendable () -> Void) {
        guard let batch = current.currentValue, batch.open else {
            eventLoop.execute(task)
            return
        }
        batch.tasks.append((eventLoop, task))
    }

    private static func flush(_ tasks: [(eventLoop: any EventLoop, task: @Sendable () -> Void)]) {
        guard !tasks.isEmpty else { return }
        var byLoop: [ObjectIdentifier: (eventLoop: any EventLoop, tasks: [@Sendable () -> Void])] = [:]
        var order: [ObjectIdentifier] = []
        for (eventLoop, task) in tasks {
            let key = ObjectIdentifier(eventLoop as AnyObject)
            if byLoop[key] == nil {
                byLoop[key] = (eventLoop, [])
                order.append(key)
            }
            byLoop[key]!.tasks.append(task)
        }
        for key in order {
            let (eventLoop, loopTasks) = byLoop[key]!
            eventLoop.execute { for task in loopTasks { task() } }
        }
    }
}

/// The daemon's ways of doing a burst of work from a thread of its own.
public enum ServerDispatch {
    /// Runs `body`, waking each event loop once for everything it queued (the journal's
    /// writer thread dispatches each committed batch this way).
    public static func batchingWakeups(_ body: () -> Void) {
        WakeupBatch.collect(body)
    }

    /// A journaled bus's `callerCommits`: true on an event loop in a round of reads, which
    /// commits the bus's waiting events itself when the round ends.
    public static func commitsAtEndOfReadRound(_ bus: EventBus) -> Bool {
        WakeupBatch.commitAtRoundEnd(bus)
    }
}
