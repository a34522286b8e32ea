import TradewireBus

/// A consumer's side that knows its members on this daemon (a ``DurableConsumer``, or a
/// cluster's ``SharedConsumer``): each member is a connection, subscribed under an id.
protocol ConsumerMembership: Sendable {
    /// The member's subscription id, when `connectionID` is a member.
    func subscription(of connectionID: Int) -> SubscriptionID?
    /// Removes a member (what it had out goes out again); its subscription id, if it was one.
    @discardableResult func leave(_ connectionID: Int) -> SubscriptionID?
}

extension Array where Element: ConsumerMembership {
    /// Leaves the consumer `connectionID` is a member of under `subscription`; false when
    /// it is a member of none under that id.
    func leave(subscription: SubscriptionID, connectionID: Int) -> Bool {
        for consumer in self where consumer.subscription(of: connectionID) == subscription {
            consumer.leave(connectionID)
            return true
        }
        return false
    }

    /// A connection closed: it leaves every consumer.
    func connectionClosed(_ connectionID: Int) {
        for consumer in self { consumer.leave(connectionID) }
    }
}
