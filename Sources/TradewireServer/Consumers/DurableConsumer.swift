import Foundation
import Synchronization
import TradewireBus

/// One durable consumer in the daemon: its ``ConsumerState`` behind a lock, and the
/// connections that are its members. Every change delivers what became deliverable to the
/// members' outboxes before the lock is released, so each member sees its deliveries in the
/// order they were made.
final class DurableConsumer: ConsumerMembership {
    /// Where one member's deliveries go.
    struct Sink: Sendable {
        let outbox: Outbox
        let prefix: Outbox.DeliveryPrefix
        let subscription: SubscriptionID
    }

    private struct Core: Sendable {
        var state: ConsumerState
        var sinks: [Int: Sink] = [:]
        var refilling = false
    }

    let settings: ConsumerSettings
    private let core: Mutex<Core>
    private let deadLetterIDs: DeadLetterIDs
    /// Called after every change worth saving.
    private let changed: @Sendable () -> Void

    init(state: ConsumerState, deadLetterIDs: DeadLetterIDs, changed: @escaping @Sendable () -> Void) {
        self.settings = state.settings
        self.core = Mutex(Core(state: state))
        self.deadLetterIDs = deadLetterIDs
        self.changed = changed
    }

    /// The bus's handler: a live event matching the pattern (under the bus's delivery lock).
    func offer(_ event: Event) {
        core.withLock { core in
            if core.state.offer(event) { Self.pump(&core, deadLetterIDs) }
        }
    }

    /// Runs `body` on the state, then delivers what became deliverable.
    private func change<T>(_ body: (inout ConsumerState) -> T) -> T {
        let result = core.withLock { core in
            let result = body(&core.state)
            Self.pump(&core, deadLetterIDs)
            return result
        }
        changed()
        return result
    }

    private static func pump(_ core: inout Core, _ ids: DeadLetterIDs) {
        guard !core.sinks.isEmpty else { return }
        let sinks = core.sinks
        let deliveries = core.state.take(
            now: .now, available: { sinks[$0].map { !$0.outbox.isOverBudget } ?? false },
            nextDeadLetterID: ids.next)
        for delivery in deliveries {
            guard let sink = sinks[delivery.member] else { continue }
            sink.outbox.enqueue(delivery: delivery.event, prefix: sink.prefix, attempt: delivery.attempt)
        }
    }

    // MARK: members

    func join(_ connection: ServerConnection, subscription: SubscriptionID) {
        core.withLock { core in
            core.sinks[connection.id] = Sink(
                outbox: connection.outbox, prefix: Outbox.DeliveryPrefix(subscription, consumer: settings.name),
                subscription: subscription)
            core.state.join(connection.id)
            Self.pump(&core, deadLetterIDs)
        }
        changed()
    }

    /// Removes a member (what it had out goes to the others); returns its subscription id
    /// (nil when it was not one).
    @discardableResult
    func leave(_ connectionID: Int) -> SubscriptionID? {
        let sink: Sink? = core.withLock { core in
            guard let sink = core.sinks.removeValue(forKey: connectionID) else { return nil }
            core.state.leave(connectionID)
            Self.pump(&core, deadLetterIDs)
            return sink
        }
        if sink != nil { changed() }
        return sink?.subscription
    }

    /// The member's subscription id, when `connectionID` is a member.
    func subscription(of connectionID: Int) -> SubscriptionID? {
        core.withLock { $0.sinks[connectionID]?.subscription }
    }

    // MARK: acknowledgements

    func ack(_ seq: Int) -> Int { change { $0.ack(seq) } }

    func ack(upTo seq: Int, member: Int) -> Int { change { $0.ack(upTo: seq, member: member) } }

    func nak(_ seq: Int, delay: Duration?, error: String?) -> Bool {
        change {
            $0.nak(seq, delay: delay, error: error, now: .now, wall: Date(), nextDeadLetterID: deadLetterIDs.next)
        }
    }

    /// Timers: expired and due deliveries go out again.
    func tick() {
        let changes = core.withLock { core in
            guard core.state.hasTimedWork || core.state.waiting > 0 else { return 0 }
            let count = core.state.expire(now: .now, wall: Date(), nextDeadLetterID: deadLetterIDs.next)
            Self.pump(&core, deadLetterIDs)
            return count
        }
        if changes > 0 { changed() }
    }

    /// Delivers whatever waits (a member's outbox drained below its budget).
    func pump() {
        core.withLock { core in Self.pump(&core, deadLetterIDs) }
    }

    // MARK: dead letters

    func retry(deadLetter id: Int) -> Bool { change { $0.retry(deadLetter: id) } }

    func discard(deadLetter id: Int) -> Int { change { $0.discard(deadLetter: id) } }

    func attach(_ event: Event, toDeadLetter id: Int) {
        core.withLock { $0.state.attach(event, toDeadLetter: id) }
    }

    // MARK: reading the journal

    /// Reads the journal while the consumer is behind it, a page at a time, delivering as it
    /// goes. Only one reader runs at a time; returns when caught up (or on a read error).
    func catchUp(from journal: any EventJournal, onError: (JournalError) -> Void) {
        let pattern = settings.pattern.text
        while true {
            let after: Int? = core.withLock { core in
                guard !core.refilling, let after = core.state.refillQuery else { return nil }
                core.refilling = true
                return after
            }
            guard let after else { return }
            let events: [Event]
            do {
                events = try journal.read(
                    JournalQuery(afterSeq: after, pattern: pattern, limit: ConsumerState.journalPage)
                ).map(Event.init(record:))
            } catch {
                core.withLock { $0.refilling = false }
                onError(error)
                return
            }
            core.withLock { core in
                core.refilling = false
                core.state.refill(events, after: after, requested: ConsumerState.journalPage)
                Self.pump(&core, deadLetterIDs)
            }
        }
    }

    // MARK: snapshots

    /// The state as it is now (for `get_consumers`, dead letters and saving).
    func snapshot() -> ConsumerState { core.withLock { $0.state } }

    /// True when the consumer is behind the journal and has room to read more.
    var needsRefill: Bool { core.withLock { !$0.refilling && $0.state.refillQuery != nil } }

    var memberCount: Int { core.withLock { $0.sinks.count } }
}

/// Dead-letter ids: daemon-wide, increasing, never reused (restored past the highest saved).
final class DeadLetterIDs: Sendable {
    private let counter: Atomic<Int>

    init(next: Int = 1) { counter = Atomic(next) }

    @Sendable func next() -> Int { counter.add(1, ordering: .relaxed).oldValue }

    var peek: Int { counter.load(ordering: .relaxed) }

    /// Moves past `id` (restoring).
    func advance(past id: Int) {
        var current = counter.load(ordering: .relaxed)
        while current <= id {
            let (exchanged, original) = counter.compareExchange(
                expected: current, desired: id + 1, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
