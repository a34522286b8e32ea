import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireRPC

/// Durable consumers on a daemon whose consumers live in a shared store (a cluster node,
/// PROTOCOL §13): the consumers themselves are the store's; this daemon keeps the
/// ``SharedConsumer`` of each one its connections are members of, and tells the store how
/// many members it has of each (for `get_consumers` on any node).
public final class SharedConsumers: Sendable {
    /// How soon changed member counts are written to the store (and every 10 s anyway).
    static let publishInterval = Duration.milliseconds(50)

    let store: any SharedConsumerStore
    let bus: EventBus
    let logger: Logger
    private let local = Mutex<[String: SharedConsumer]>([:])
    private let membersChanged = Atomic<Bool>(false)
    private let publisher = Mutex<Task<Void, Never>?>(nil)
    private let stopped = Atomic<Bool>(false)

    public init(store: any SharedConsumerStore, bus: EventBus, logger: Logger) {
        self.store = store
        self.bus = bus
        self.logger = logger
    }

    /// The consumers this daemon has (or had) members of.
    var all: [SharedConsumer] { local.withLock { Array($0.values) } }

    /// This daemon's side of consumer `settings.name` (created on first use, and anew when
    /// the consumer was deleted and created again with other settings).
    func consumer(_ settings: ConsumerSettings) -> SharedConsumer {
        local.withLock { local in
            if let existing = local[settings.name], existing.settings == settings || existing.memberCount > 0 {
                return existing
            }
            let consumer = SharedConsumer(settings: settings, store: store, bus: bus, logger: logger) {
                [weak self] in self?.noteMembersChanged()
            }
            local[settings.name] = consumer
            return consumer
        }
    }

    /// The consumer `name` when `connectionID` is one of its members here (else -32040).
    func member(_ name: String, connectionID: Int) throws(RPCError) -> SharedConsumer {
        guard let consumer = local.withLock({ $0[name] }), consumer.subscription(of: connectionID) != nil else {
            throw .unknownConsumer(name)
        }
        return consumer
    }

    /// Leaves the consumer `connectionID` is a member of under `subscription`, if any.
    func leave(subscription: SubscriptionID, connectionID: Int) -> Bool {
        all.leave(subscription: subscription, connectionID: connectionID)
    }

    /// A connection closed: it leaves every consumer (what it had out goes out again).
    func connectionClosed(_ connectionID: Int) { all.connectionClosed(connectionID) }

    /// A consumer was deleted: its members here get nothing more.
    func forget(_ name: String) {
        let consumer = local.withLock { $0.removeValue(forKey: name) }
        consumer?.removeAllMembers()
        consumer?.stop()
    }

    /// Wakes every consumer here (a dead letter went back to one of them).
    func wakeAll() {
        for consumer in all { consumer.wake() }
    }

    /// Members here, by consumer.
    func localMembers() -> [String: Int] {
        local.withLock { $0.mapValues(\.memberCount) }
    }

    // MARK: member counts

    private func noteMembersChanged() {
        membersChanged.store(true, ordering: .relaxed)
        startPublisher()
    }

    /// Writes the member counts when they changed (and every 10 s), until ``close()``.
    private func startPublisher() {
        publisher.withLock { publisher in
            guard publisher == nil, !stopped.load(ordering: .relaxed) else { return }
            publisher = Task.detached { [weak self] in
                var publishedAt = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.publishInterval)
                    guard let self else { return }
                    let due = ContinuousClock.now - publishedAt >= .seconds(10)
                    guard self.membersChanged.exchange(false, ordering: .relaxed) || due else { continue }
                    do {
                        try await self.store.publishMembers(self.localMembers())
                        publishedAt = .now
                    } catch {
                        self.membersChanged.store(true, ordering: .relaxed)
                    }
                }
            }
        }
    }

    /// The daemon stops: no more claiming, member counts zero, and what this daemon has
    /// out goes back to the store (the other nodes' members take it at once).
    public func close() async {
        stopped.store(true, ordering: .relaxed)
        publisher.withLock { $0 }?.cancel()
        let consumers = all
        for consumer in consumers { consumer.stop() }
        let zero = Dictionary(uniqueKeysWithValues: consumers.map { ($0.settings.name, 0) })
        do {
            try await store.publishMembers(zero)
            try await store.releaseAll()
        } catch {
            logger.warning("consumer.shared.close_failed", metadata: ["error": "\(error)"])
        }
    }
}
