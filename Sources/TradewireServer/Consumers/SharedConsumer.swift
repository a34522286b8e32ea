import Logging
import Synchronization
import TradewireBus
import TradewireRPC

/// One shared consumer's members on this daemon (PROTOCOL §11 across a cluster), and the
/// task that claims events from the store for them while it has any: woken by every
/// matching event this daemon's bus delivers, by acknowledgements, and by a poll
/// (``pollInterval``) that catches redeliveries whose deadline passed on another node.
/// What each member has out is remembered here (for `ack up_to_seq` and for giving it back
/// when the member leaves); the attempts and deadlines are the store's.
final class SharedConsumer: ConsumerMembership {
    typealias Sink = DurableConsumer.Sink

    /// How often a consumer with members looks for redeliveries when nothing woke it.
    static let pollInterval = Duration.milliseconds(200)
    /// Events claimed at once at most.
    static let claimBatch = 256

    private struct Outstanding {
        var member: Int
        var until: ContinuousClock.Instant
    }

    private struct Core {
        var order: [Int] = []
        var sinks: [Int: Sink] = [:]
        var cursor = 0
        var outstanding: [Int: Outstanding] = [:]
        var driver: Task<Void, Never>?
        var wake: AsyncStream<Void>.Continuation?
    }

    let settings: ConsumerSettings
    private let store: any SharedConsumerStore
    private let bus: EventBus
    private let logger: Logger
    private let core = Mutex(Core())
    /// Called when the members change (the registry publishes the counts).
    private let membersChanged: @Sendable () -> Void

    init(
        settings: ConsumerSettings, store: any SharedConsumerStore, bus: EventBus, logger: Logger,
        membersChanged: @escaping @Sendable () -> Void
    ) {
        self.settings = settings
        self.store = store
        self.bus = bus
        self.logger = logger
        self.membersChanged = membersChanged
    }

    private var name: String { settings.name }
    private var owner: SubscriberOwner { .inProcess("shared-consumer:\(settings.name)") }

    // MARK: members

    /// Adds a member; the first one starts the claiming.
    func join(_ connection: ServerConnection, subscription: SubscriptionID) {
        let sink = Sink(
            outbox: connection.outbox, prefix: Outbox.DeliveryPrefix(subscription, consumer: name),
            subscription: subscription)
        let started: Bool = core.withLock { core in
            if core.sinks[connection.id] == nil { core.order.append(connection.id) }
            core.sinks[connection.id] = sink
            guard core.driver == nil else { return false }
            // Started under the lock, so that two members joining at once start one task.
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            core.wake = continuation
            core.driver = Task.detached { [self] in await drive(stream) }
            return true
        }
        if started {
            // Outside the lock: the bus calls `wake()` (which takes it) under its own.
            bus.subscribe(settings.pattern, owner: owner, handler: .sync { [weak self] _ in self?.wake() })
        }
        wake()
        membersChanged()
    }

    /// Removes a member: what it had out goes out again at once (on any node). Returns its
    /// subscription id (nil when it was not one).
    @discardableResult
    func leave(_ connectionID: Int) -> SubscriptionID? {
        let left: (sink: Sink, seqs: [Int], driver: Task<Void, Never>?)? = core.withLock { core in
            guard let sink = core.sinks.removeValue(forKey: connectionID) else { return nil }
            if let index = core.order.firstIndex(of: connectionID) {
                core.order.remove(at: index)
                if core.cursor > index { core.cursor -= 1 }
            }
            let seqs = core.outstanding.filter { $0.value.member == connectionID }.map(\.key)
            for seq in seqs { core.outstanding[seq] = nil }
            var driver: Task<Void, Never>?
            if core.sinks.isEmpty {
                driver = core.driver
                core.driver = nil
                core.wake?.finish()
                core.wake = nil
            }
            return (sink, seqs, driver)
        }
        guard let left else { return nil }
        if let driver = left.driver {
            driver.cancel()
            bus.unsubscribeAll(owner: owner)
        }
        if !left.seqs.isEmpty {
            let store = self.store
            let name = self.name
            let logger = self.logger
            let seqs = left.seqs
            Task {
                do { try await store.release(name, seqs: seqs, undelivered: false) } catch {
                    // Not given back: they go out again when their ack_wait passes.
                    logger.warning(
                        "consumer.shared.release_failed", metadata: ["consumer": "\(name)", "error": "\(error)"])
                }
            }
        }
        membersChanged()
        return left.sink.subscription
    }

    /// Every member leaves (the consumer was deleted).
    func removeAllMembers() {
        for member in core.withLock({ $0.order }) { leave(member) }
    }

    func subscription(of connectionID: Int) -> SubscriptionID? {
        core.withLock { $0.sinks[connectionID]?.subscription }
    }

    var memberCount: Int { core.withLock { $0.sinks.count } }

    // MARK: acknowledgements

    func ack(_ seq: Int) async throws(RPCError) -> Int {
        let acked = try await store.ack(name, seq: seq)
        core.withLock { _ = $0.outstanding.removeValue(forKey: seq) }
        wake()
        return acked
    }

    /// Acknowledges what `member` has out here up to `upTo`.
    func ack(upTo: Int, member: Int) async throws(RPCError) -> Int {
        let now = ContinuousClock.now
        let seqs = core.withLock { core in
            core.outstanding.filter { $0.key <= upTo && $0.value.member == member && $0.value.until > now }.map(\.key)
        }
        guard !seqs.isEmpty else { return 0 }
        let acked = try await store.ack(name, seqs: seqs)
        core.withLock { core in for seq in seqs { core.outstanding[seq] = nil } }
        wake()
        return acked
    }

    func nak(_ seq: Int, delay: Duration?, error: String?) async throws(RPCError) -> Bool {
        let done = try await store.nak(name, seq: seq, delay: delay ?? .zero, error: error)
        core.withLock { _ = $0.outstanding.removeValue(forKey: seq) }
        wake()
        return done
    }

    // MARK: claiming

    /// Makes the claiming task look again at once.
    func wake() {
        _ = core.withLock { $0.wake }?.yield()
    }

    /// Claims and delivers while members remain, a poll apart when nothing wakes it.
    private func drive(_ stream: AsyncStream<Void>) async {
        let ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.pollInterval)
                self?.wake()
            }
        }
        defer { ticker.cancel() }
        var failing = false
        var wakes = stream.makeAsyncIterator()
        while !Task.isCancelled {
            if hasRoom {
                let limit = min(settings.maxInFlight, Self.claimBatch)
                do {
                    guard let claimed = try await store.claim(name, limit: limit) else {
                        logger.notice("consumer.shared.deleted", metadata: ["consumer": "\(name)"])
                        removeAllMembers()
                        return
                    }
                    if failing { logger.notice("consumer.shared.claiming_again", metadata: ["consumer": "\(name)"]) }
                    failing = false
                    await deliver(claimed)
                    if claimed.count == limit { continue }
                } catch {
                    if !failing {
                        logger.warning(
                            "consumer.shared.claim_failed", metadata: ["consumer": "\(name)", "error": "\(error)"])
                    }
                    failing = true
                }
            }
            guard await wakes.next() != nil else { return }
        }
    }

    /// True when a member can take more (its outbox is within its budget).
    private var hasRoom: Bool {
        core.withLock { core in core.sinks.values.contains { !$0.outbox.isOverBudget } }
    }

    /// Hands claimed events to the members round robin; gives back what nobody here can take,
    /// and buries what the journal no longer holds.
    private func deliver(_ claimed: [ClaimedEvent]) async {
        guard !claimed.isEmpty else { return }
        let deadline = ContinuousClock.now + settings.ackWait
        var gone: [Int] = []
        var unplaced: [Int] = []
        core.withLock { core in
            let now = ContinuousClock.now
            core.outstanding = core.outstanding.filter { $0.value.until > now }
            for claim in claimed {
                guard let event = claim.event else {
                    gone.append(claim.seq)
                    continue
                }
                guard let member = Self.nextMember(&core) else {
                    unplaced.append(claim.seq)
                    continue
                }
                guard let sink = core.sinks[member] else { continue }
                sink.outbox.enqueue(delivery: event, prefix: sink.prefix, attempt: claim.attempt)
                core.outstanding[claim.seq] = Outstanding(member: member, until: deadline)
                core.cursor += 1
            }
        }
        do {
            try await store.bury(name, seqs: gone, error: "event no longer in the journal")
            try await store.release(name, seqs: unplaced, undelivered: true)
        } catch {
            // They go out again when their ack_wait passes.
            logger.warning("consumer.shared.give_back_failed", metadata: ["consumer": "\(name)", "error": "\(error)"])
        }
    }

    /// The next member in turn whose outbox is within its budget (the cursor stays on it).
    private static func nextMember(_ core: inout Core) -> Int? {
        let count = core.order.count
        for step in 0..<count {
            let index = (core.cursor + step) % count
            let member = core.order[index]
            if let sink = core.sinks[member], !sink.outbox.isOverBudget {
                core.cursor = index
                return member
            }
        }
        return nil
    }

    /// Stops claiming (the daemon stops); members stay until their connections close.
    func stop() {
        let driver = core.withLock { core in
            defer {
                core.driver = nil
                core.wake?.finish()
                core.wake = nil
            }
            return core.driver
        }
        driver?.cancel()
        bus.unsubscribeAll(owner: owner)
    }
}
