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
}
