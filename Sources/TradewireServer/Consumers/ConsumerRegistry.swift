import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireRPC

/// The daemon's durable consumers (PROTOCOL §11): created by a `subscribe` that names one,
/// kept across disconnects and, with a journal, across restarts (saved as journal state
/// documents at most every ``saveInterval`` and at close). A timer task redelivers what
/// `ack_wait` left unacknowledged.
public final class ConsumerRegistry: Sendable {
    /// Consumers one daemon holds.
    public static let maximumConsumers = 1024
    /// How often a timer looks for expired deliveries.
    static let tickInterval = Duration.milliseconds(20)
    /// How often changed consumer state is saved to the journal (a crash redelivers what was
    /// acknowledged since: at least once).
    static let saveInterval = Duration.milliseconds(200)

    let bus: EventBus
    let journal: (any EventJournal)?
    let logger: Logger
    private let consumers = Mutex<[String: DurableConsumer]>([:])
    let deadLetterIDs = DeadLetterIDs()
    private let dirty = Atomic<Bool>(false)
    private let timer = Mutex<Task<Void, Never>?>(nil)
    private let closed = Atomic<Bool>(false)

    public init(bus: EventBus, journal: (any EventJournal)?, logger: Logger = Logger(label: "tradewire.consumers")) {
        self.bus = bus
        self.journal = journal
        self.logger = logger
    }

    /// Every consumer, by name.
    var all: [DurableConsumer] {
        consumers.withLock { Array($0.values) }.sorted { $0.settings.name < $1.settings.name }
    }

    /// Every consumer's state now, by name (for metrics and inspection).
    public func snapshots() -> [ConsumerState] { all.map { $0.snapshot() } }

    func consumer(named name: String) -> DurableConsumer? { consumers.withLock { $0[name] } }

    /// The consumer `name`, created with `settings` (reading after `since`) when it does not
    /// exist. An existing one must have the same pattern, and the same options where given.
    func consumer(
        _ settings: ConsumerSettings, given: ConsumerOptionsGiven, since: Int?
    ) throws(RPCError) -> DurableConsumer {
        let existing: DurableConsumer? = consumers.withLock { $0[settings.name] }
        if let existing {
            try Self.check(existing.settings, against: settings, given: given)
            return existing
        }
        let start = since ?? bus.lastSeq
        let created: DurableConsumer = try consumers.withLock { (all) throws(RPCError) -> DurableConsumer in
            if let raced = all[settings.name] { return raced }
            guard all.count < Self.maximumConsumers else {
                throw RPCError(
                    code: -32001, message: "Too many consumers (limit \(Self.maximumConsumers)); delete one first",
                    type: "overloaded", details: ["max_consumers": JSONValue(Self.maximumConsumers)])
            }
            let consumer = makeConsumer(ConsumerState(settings: settings, startAfter: start, journaled: journal != nil))
            all[settings.name] = consumer
            return consumer
        }
        if created.settings == settings {
            attach(created, replayingAfter: journal == nil ? start : nil)
            logger.info(
                "consumer.created",
                metadata: [
                    "consumer": "\(settings.name)", "consumer.pattern": "\(settings.pattern)", "seq": "\(start)",
                ])
            saveNow()
        } else {
            try Self.check(created.settings, against: settings, given: given)
        }
        return created
    }

    /// Adds a consumer restored from the journal and starts it.
    func restore(_ state: ConsumerState) {
        let consumer = makeConsumer(state)
        consumers.withLock { $0[state.settings.name] = consumer }
        attach(consumer, replayingAfter: nil)
    }

    /// Reads the journal at once when the consumer has room and the journal has more (an
    /// acknowledgement freed room).
    func catchUpIfBehind(_ consumer: DurableConsumer) {
        if consumer.needsRefill { catchUp(consumer) }
    }

    private func makeConsumer(_ state: ConsumerState) -> DurableConsumer {
        DurableConsumer(state: state, deadLetterIDs: deadLetterIDs) { [weak self] in self?.markDirty() }
    }

    /// Subscribes the consumer to the bus (an ephemeral one replays history after `start`)
    /// and starts reading the journal.
    private func attach(_ consumer: DurableConsumer, replayingAfter start: Int?) {
        bus.subscribe(
            consumer.settings.pattern, owner: Self.owner(consumer.settings.name),
            handler: .sync { event in consumer.offer(event) },
            replay: start.map { ReplayRequest(sinceSeq: $0) })
        startTimer()
        catchUp(consumer)
    }

    static func owner(_ name: String) -> SubscriberOwner { .inProcess("consumer:\(name)") }

    /// Reads the journal for a consumer that is behind it (in a task; one reader at a time).
    func catchUp(_ consumer: DurableConsumer) {
        guard let journal else { return }
        let logger = self.logger
        Task.detached {
            consumer.catchUp(from: journal) { error in
                logger.error(
                    "consumer.journal_read_failed",
                    metadata: ["consumer": "\(consumer.settings.name)", "error": "\(error)"])
            }
        }
    }

    static func check(
        _ existing: ConsumerSettings, against asked: ConsumerSettings, given: ConsumerOptionsGiven
    ) throws(RPCError) {
        if existing.pattern != asked.pattern {
            throw .invalidParams(
                path: "/event_type",
                "consumer \(existing.name) reads \(existing.pattern.text); its pattern is fixed when it is created")
        }
        let mismatches: [(Bool, String, Int, Int)] = [
            (given.ackWait, "ack_wait_ms", existing.ackWaitMilliseconds, asked.ackWaitMilliseconds),
            (given.maxDeliver, "max_deliver", existing.maxDeliver, asked.maxDeliver),
            (given.maxInFlight, "max_in_flight", existing.maxInFlight, asked.maxInFlight),
        ]
        for (isGiven, name, have, want) in mismatches where isGiven && have != want {
            throw .invalidParams(
                path: "/\(name)", "consumer \(existing.name) has \(name) \(have); omit it or give the same value")
        }
    }

    // MARK: members

    /// Leaves the consumer `connectionID` is a member of under `subscription`, if any.
    func leave(subscription: SubscriptionID, connectionID: Int) -> Bool {
        all.leave(subscription: subscription, connectionID: connectionID)
    }

    /// A connection closed: it leaves every consumer (what it had out goes out again).
    func connectionClosed(_ connectionID: Int) { all.connectionClosed(connectionID) }

    /// The consumer `name` when `connectionID` is one of its members (else -32040).
    func member(_ name: String, connectionID: Int) throws(RPCError) -> DurableConsumer {
        guard let consumer = consumer(named: name), consumer.subscription(of: connectionID) != nil else {
            throw .unknownConsumer(name)
        }
        return consumer
    }

    // MARK: deleting

    /// Removes a consumer, its position and its dead letters. Returns 1 or 0.
    func delete(_ name: String) -> Int {
        let removed = consumers.withLock { $0.removeValue(forKey: name) }
        guard let removed else { return 0 }
        bus.unsubscribeAll(owner: Self.owner(name))
        for member in removed.snapshot().members { removed.leave(member) }
        logger.info("consumer.deleted", metadata: ["consumer": "\(name)"])
        saveNow()
        return 1
    }

    // MARK: dead letters

    /// The consumer holding dead letter `id`.
    func holder(ofDeadLetter id: Int) -> DurableConsumer? {
        all.first { consumer in consumer.snapshot().deadLetters.contains { $0.id == id } }
    }

    // MARK: timers and saving

    private func markDirty() { dirty.store(true, ordering: .relaxed) }

    /// Starts the timer task (once): redeliveries, journal catch-up and periodic saves.
    func startTimer() {
        timer.withLock { timer in
            guard timer == nil, !closed.load(ordering: .relaxed) else { return }
            timer = Task.detached { [weak self] in
                var lastSave = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.tickInterval)
                    guard let self else { return }
                    for consumer in self.all {
                        consumer.tick()
                        if consumer.snapshot().refillQuery != nil { self.catchUp(consumer) }
                    }
                    if ContinuousClock.now - lastSave >= Self.saveInterval {
                        lastSave = .now
                        if self.dirty.exchange(false, ordering: .relaxed) { self.save() }
                    }
                }
            }
        }
    }

    /// Stops the timer and saves (graceful stop).
    public func close() {
        closed.store(true, ordering: .relaxed)
        let task = timer.withLock { timer in
            defer { timer = nil }
            return timer
        }
        task?.cancel()
        save()
    }

    /// Saves now (a consumer was created or deleted).
    func saveNow() {
        dirty.store(false, ordering: .relaxed)
        save()
    }
}

/// Which of the consumer options a `subscribe` gave (an existing consumer's must match).
struct ConsumerOptionsGiven: Sendable {
    var ackWait = false
    var maxDeliver = false
    var maxInFlight = false
}
