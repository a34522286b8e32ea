import TradewireBus
import TradewireJSON
import TradewireRPC

/// What the RPC inspection methods answer, for readers outside this module (the HTTP
/// dashboard's `/api/` routes): each is the method's own result, built by the same code.
/// Nothing here changes the daemon's state.
extension Daemon {
    /// The `get_status` result.
    public func status() async -> JSONValue { await DaemonMethods.status(self) }

    /// The `stages` of `get_status`: every servable stage with its remote groups in order.
    public func stageGroups() -> JSONValue { stages.status() }

    /// The `get_portfolio` result.
    public func portfolio() async -> JSONValue { await PortfolioMethods.portfolio(pipeline) }

    /// The `consumers` of `get_consumers` (on a cluster node, the cluster's: -32003 while
    /// its database cannot be reached).
    public func consumerList() async throws(RPCError) -> [JSONValue] {
        if let shared = sharedConsumers {
            return try await SharedConsumerMethods.consumers(shared, newest: bus.lastSeq)
        }
        return ConsumerMethods.consumers(consumers)
    }

    /// The `dead_letters` of `get_dead_letters` (every consumer's, oldest first), without
    /// their events when `withEvent` is false.
    public func deadLetters(limit: Int, withEvent: Bool) async throws(RPCError) -> [JSONValue] {
        if let shared = sharedConsumers {
            return try await shared.store.deadLetters(consumer: nil, limit: limit).map {
                ConsumerRegistry.json($0, withEvent: withEvent)
            }
        }
        return ConsumerMethods.deadLetters(consumers, consumer: nil, limit: limit, withEvent: withEvent)
    }

    /// Subscribes with a replay after `since` (PROTOCOL §8): what the history ring no
    /// longer holds comes from the journal, on a cluster node the shared one (read first,
    /// without holding a thread). See ``EventBus/subscribe(_:owner:replayingAfter:from:id:deliver:onGap:)``.
    public func subscribe(
        _ pattern: EventPattern, owner: SubscriberOwner, replayingAfter since: Int?,
        deliver: @escaping @Sendable (Event) throws -> Void, onGap: @escaping (SubscriptionID, ReplayGap) -> Void
    ) async -> SubscribeOutcome {
        guard let readShared = clusterHistory, let plan = bus.journalReplayPlan(pattern, after: since) else {
            return bus.subscribe(
                pattern, owner: owner, replayingAfter: since, from: pipeline.journal, deliver: deliver, onGap: onGap)
        }
        let read = await Self.replayRead(plan, from: readShared)
        return bus.subscribe(
            pattern, owner: owner, replayingAfter: since, journalRead: read, deliver: deliver, onGap: onGap)
    }

    /// The shared journal's part of a replay (nil when it cannot be read: the ring then
    /// reports a gap).
    static func replayRead(
        _ plan: JournalReplayPlan,
        from read: @Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>
    ) async -> JournalReplayRead? {
        guard case .success(let page) = await read(plan.query) else { return nil }
        return JournalReplayRead(plan: plan, records: page.records.map(\.record))
    }
}
