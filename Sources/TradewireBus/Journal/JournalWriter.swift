import CoreMetrics
import DequeModule
import Foundation
import Logging
import Synchronization
import TradewireJSON

/// Capture before dispatch, with group commit: events wait here, in seq order, until a
/// batch of them is in the journal; only then does the bus deliver them and answer their
/// publishers.
///
/// A thread of its own writes. It takes everything queued (at most ``maximumBatch`` events)
/// as one transaction, so batches grow by themselves under load and a lone event commits at
/// once. A publisher's thread that promised to (an event loop, at the end of its read round)
/// commits what is queued itself instead, through ``commitOnCaller()``: the writer thread is
/// not woken for those events, nor the publisher's loop to answer them. One commit runs at a
/// time (`commitLock`), so batches are appended and delivered in seq order whoever runs them.
/// A failed append to a local journal is retried (with a pause) until it succeeds or the
/// bus closes: an event that was given a seq is never skipped. A sequencing journal (a
/// cluster's) assigns the seqs itself: its batch is retried under the same key for
/// ``SequencingJournal/giveUpAfter``, then its publishers are told it is unavailable.
final class JournalWriter: @unchecked Sendable {
    /// Largest batch per transaction.
    static let maximumBatch = 1000
    /// The writer thread's name (Linux keeps 15 bytes of a thread's name and refuses longer).
    static let threadName = "tradewire.jnl"

    struct Entry {
        let event: Event
        let ticket: DispatchTicket
        /// The leader epoch a sequencing journal must fence this event with (nil: none).
        var fence: Int? = nil
    }

    /// Where batches go.
    enum Sink {
        /// A local journal: seqs assigned by the bus, dispatch right after the commit.
        case journal(any EventJournal)
        /// A journal that assigns seqs (a cluster's): the batch is registered with the bus
        /// under its key first, and delivered when the journal's tail hands it over.
        case sequencing(
            any SequencingJournal, register: @Sendable (String, [Entry]) -> Void,
            abandon: @Sendable (String, String) -> Void)
    }

    private let sink: Sink
    private let logger: Logger
    /// This writer's batch keys: `<start token>-<counter>` (unique across restarts).
    private let keyPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private var batchCounter = 0
    /// Delivers one committed event (under the bus's lock) and completes its ticket.
    private let dispatch: @Sendable ([Entry]) -> Void
    /// Wraps each batch's dispatch (the daemon coalesces event-loop wake-ups with it).
    private let dispatchScope: @Sendable (() -> Void) -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue = Deque<Entry>()
    private var closing = false
    /// A local journal's next seq: given under this writer's lock, so a publish on a journaled
    /// bus never waits for the bus's lock (held by the writer while it delivers a batch).
    private var nextSeq: Int
    /// The text of publish timestamps, a second at a time (under the same lock).
    private var timestamps = RFC3339SecondCache()
    /// True while the writer thread sleeps for want of events (under `condition`).
    private var writerWaiting = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)
    /// Held while a batch is taken, appended and delivered: by the writer thread, or by a
    /// publisher's thread in ``commitOnCaller()``.
    private let commitLock = NSLock()

    /// `firstSeq`: the seq ``enqueueNext(stamp:callerCommits:_:)`` gives first (a local journal's newest + 1).
    init(
        sink: Sink, firstSeq: Int = 1, logger: Logger, dispatchScope: @escaping @Sendable (() -> Void) -> Void,
        dispatch: @escaping @Sendable ([Entry]) -> Void
    ) {
        self.sink = sink
        self.nextSeq = firstSeq
        self.logger = logger
        self.dispatch = dispatch
        self.dispatchScope = dispatchScope
        let thread = Thread { [unowned self] in
            // Named from inside: on Linux, a name given before start() never reaches the
            // thread, which kept its creator's (as `top -H` and perf showed).
            Thread.current.name = Self.threadName
            self.run()
        }
        self.thread = thread
        thread.start()
    }

    /// Queues an event for a sequencing journal (called under the bus's lock, so the queue is
    /// in publish order). False once the writer closed: the event will never be committed.
    func enqueue(_ entry: Entry) -> Bool {
        condition.lock()
        guard !closing else {
            condition.unlock()
            return false
        }
        let wake = append(entry, callerCommits: false)
        condition.unlock()
        if wake { condition.signal() }
        return true
    }

    /// Queues an event for a local journal: `make` builds it, under this writer's lock, with
    /// the next seq and the text of `stamp`, so the queue is in seq order. `queued` is false
    /// once the writer closed: the entry (with the seq it would have had, not used up) will
    /// never be committed. `callerCommits`: the calling thread will call ``commitOnCaller()``
    /// soon, so the writer thread is not woken for this entry.
    func enqueueNext(
        stamp: (seconds: Int64, micros: Int64), callerCommits: Bool = false,
        _ make: (_ seq: Int, _ text: RFC3339Text) -> Entry
    ) -> (entry: Entry, queued: Bool) {
        condition.lock()
        let entry = make(nextSeq, timestamps.text(seconds: stamp.seconds, micros: stamp.micros))
        guard !closing else {
            condition.unlock()
            return (entry, false)
        }
        nextSeq += 1
        let wake = append(entry, callerCommits: callerCommits)
        condition.unlock()
        if wake { condition.signal() }
        return (entry, true)
    }

    /// True while the writer thread sleeps for want of events (for tests).
    var sleeps: Bool {
        condition.lock()
        defer { condition.unlock() }
        return writerWaiting
    }

    /// The newest seq ``enqueueNext(stamp:callerCommits:_:)`` gave (`firstSeq - 1` before the first).
    var lastIssuedSeq: Int {
        condition.lock()
        defer { condition.unlock() }
        return nextSeq - 1
    }

    /// Under `condition`: queues, and says whether the writer thread must be woken for it
    /// (it sleeps, and the caller will not commit). The caller signals after unlocking: a
    /// signal under the lock wakes the thread only for it to sleep again on the lock, and the
    /// unlock then wakes it a second time (two wake-ups, each a costly cross-CPU call on a
    /// virtual machine).
    private func append(_ entry: Entry, callerCommits: Bool) -> Bool {
        queue.append(entry)
        guard writerWaiting && !callerCommits else { return false }
        writerWaiting = false
        return true
    }

    /// Wakes the writer thread when it sleeps while events wait.
    private func wakeWriterIfIdle() {
        condition.lock()
        let wake = writerWaiting && !queue.isEmpty
        if wake { writerWaiting = false }
        condition.unlock()
        if wake { condition.signal() }
    }

    /// Under `condition`: takes the next batch off the queue (at most ``maximumBatch``
    /// events, all with the same fence: the journal checks it once).
    private func takeBatch() -> [Entry] {
        guard let fence = queue.first.map(\.fence) else { return [] }
        var count = 1
        while count < min(queue.count, Self.maximumBatch) && queue[count].fence == fence { count += 1 }
        let batch = Array(queue.prefix(count))
        queue.removeFirst(count)
        return batch
    }

    /// Commits one batch of what is queued on the calling thread (an event loop at the end of
    /// its read round, after publishes enqueued with `callerCommits`), and delivers it. A
    /// commit already running elsewhere takes these events after its own; a failed append is
    /// handed back to the writer thread, which retries it. Whatever is still queued afterwards
    /// goes to the writer thread. Only a local journal's events are committed here.
    func commitOnCaller() {
        guard case .journal(let journal) = sink, commitLock.try() else {
            wakeWriterIfIdle()
            return
        }
        condition.lock()
        let batch = takeBatch()
        condition.unlock()
        if !batch.isEmpty && !commitOnce(batch, to: journal) {
            condition.lock()
            queue.prepend(contentsOf: batch)
            condition.unlock()
        }
        commitLock.unlock()
        wakeWriterIfIdle()
    }

    /// Commits and dispatches everything queued, then stops the thread. Idempotent.
    func close() {
        condition.lock()
        let first = !closing
        closing = true
        condition.signal()
        condition.unlock()
        if first { stopped.wait() }
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !closing {
                writerWaiting = true
                condition.wait()
            }
            writerWaiting = false
            condition.unlock()
            // Taken under the commit lock: a publisher's thread may have committed these
            // meanwhile, and batches must be delivered in the order they were taken. The
            // thread stops under it too, so no batch a caller hands back is left behind.
            commitLock.lock()
            condition.lock()
            if queue.isEmpty && closing {
                condition.unlock()
                commitLock.unlock()
                stopped.signal()
                return
            }
            let batch = takeBatch()
            condition.unlock()
            if !batch.isEmpty { commit(batch) }
            commitLock.unlock()
        }
    }

    private func commit(_ batch: [Entry]) {
        switch sink {
        case .journal(let journal): commit(batch, to: journal)
        case .sequencing(let journal, let register, let abandon):
            batchCounter += 1
            let key = "\(keyPrefix)-\(batchCounter)"
            register(key, batch)
            commit(batch, key: key, to: journal, abandon: abandon)
        }
    }

    private func commit(
        _ batch: [Entry], key: String, to journal: any SequencingJournal, abandon: @Sendable (String, String) -> Void
    ) {
        let events = batch.map(\.event)
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            do {
                let stopwatch = MetricsStopwatch()
                try journal.append(events, batchKey: key, fence: batch[0].fence)
                stopwatch.record(into: BusMetrics.journalCommit)
                return
            } catch let refusal as SequencingRefusal {
                // Refused for good (a fenced epoch): retrying cannot help.
                logger.warning(
                    "journal.append.refused",
                    metadata: ["error": "\(refusal)", "batch.key": "\(key)", "batch.count": "\(batch.count)"])
                abandon(key, refusal.message)
                return
            } catch {
                attempt += 1
                logger.error(
                    "journal.append.failed",
                    metadata: [
                        "error": "\(error)", "attempt": "\(attempt)", "batch.key": "\(key)",
                        "batch.count": "\(batch.count)",
                    ])
                if ContinuousClock.now - started >= journal.giveUpAfter {
                    abandon(key, "\(error)")
                    return
                }
                Thread.sleep(forTimeInterval: min(0.5, 0.01 * Double(1 << min(attempt, 6))))
            }
        }
    }

    private func commit(_ batch: [Entry], to journal: any EventJournal) {
        var attempt = 0
        while !commitOnce(batch, to: journal, attempt: attempt) {
            attempt += 1
            // Nothing is dispatched or acknowledged before it is in the journal: wait and retry.
            Thread.sleep(forTimeInterval: min(1.0, 0.01 * Double(1 << min(attempt, 7))))
        }
    }

    /// Appends `batch` and delivers it; false (logged, nothing delivered) when the append failed.
    private func commitOnce(_ batch: [Entry], to journal: any EventJournal, attempt: Int = 0) -> Bool {
        let events = batch.map(\.event)
        do {
            let stopwatch = MetricsStopwatch()
            try journal.append(events: events)
            stopwatch.record(into: BusMetrics.journalCommit)
        } catch {
            logger.error(
                "journal.append.failed",
                metadata: [
                    "error": "\(error)", "attempt": "\(attempt + 1)", "batch.first_seq": "\(events[0].seq)",
                    "batch.count": "\(events.count)",
                ])
            return false
        }
        dispatchScope { dispatch(batch) }
        return true
    }
}

/// What a publisher waits for when the bus has a journal: the event's dispatch, after its
/// batch committed.
public final class DispatchTicket: Sendable {
    private struct State {
        var outcome: DispatchOutcome?
        var waiters: [CheckedContinuation<DispatchOutcome, Never>] = []
        var callbacks: [@Sendable (DispatchOutcome) -> Void] = []
    }
    private let state = Mutex(State())

    init() {}

    func complete(_ outcome: DispatchOutcome) {
        let (waiters, callbacks) = state.withLock { state in
            state.outcome = outcome
            defer {
                state.waiters = []
                state.callbacks = []
            }
            return (state.waiters, state.callbacks)
        }
        for waiter in waiters { waiter.resume(returning: outcome) }
        for callback in callbacks { callback(outcome) }
    }

    /// The outcome when already dispatched.
    var outcome: DispatchOutcome? { state.withLock { $0.outcome } }

    /// Calls `body` once dispatched (at once when it already is), on the dispatching thread.
    func whenDispatched(_ body: @escaping @Sendable (DispatchOutcome) -> Void) {
        let ready: DispatchOutcome? = state.withLock { state in
            if let outcome = state.outcome { return outcome }
            state.callbacks.append(body)
            return nil
        }
        if let ready { body(ready) }
    }

    func dispatched() async -> DispatchOutcome {
        await withCheckedContinuation { continuation in
            let ready: DispatchOutcome? = state.withLock { state in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// What dispatch found: the client subscriptions that matched and the async handlers to run.
struct DispatchOutcome: Sendable {
    let clientSubscribers: Int
    /// The subscribers the event matched (the match cache's own list: no copy per publish),
    /// of which `asyncHandlers` have async handlers still to run.
    let matched: [Subscriber]
    let asyncHandlers: Int
    /// The event as delivered, when it differs from the one published (a sequencing journal
    /// gave it its seq).
    var event: Event? = nil
    /// Why the event was not stored (a sequencing journal that could not be reached).
    var failure: String? = nil

    /// Nothing matched: an event that was not stored (`failure` says why).
    static func unmatched(failure: String?) -> DispatchOutcome {
        DispatchOutcome(clientSubscribers: 0, matched: [], asyncHandlers: 0, failure: failure)
    }
}
