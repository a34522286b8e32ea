/// A snapshot of the bus's counters and subscriptions.
public struct BusStatistics: Sendable, Equatable {
    /// Client subscription patterns ever used → current client subscriptions on each.
    /// A pattern stays listed (with 0) after its last subscriber leaves, as in the reference.
    public var clientSubscriptionsByPattern: [String: Int]
    /// In-process handlers per pattern.
    public var internalHandlersByPattern: [String: Int]
    public var eventsPublished: Int
    /// Handler invocations and remote enqueues.
    public var eventsDelivered: Int
    public var handlerErrors: Int
    /// Lifetime publishes per event type (types beyond ``EventBus/maximumTrackedTypes`` are
    /// summed under `(other)`).
    public var publishedByType: [String: Int]
    public var historySize: Int
    public var historyCapacity: Int
    public var lastSeq: Int

    /// Reference key `total_event_types`.
    public var totalEventTypes: Int { clientSubscriptionsByPattern.count }
    /// Reference key `total_subscribers`.
    public var totalSubscribers: Int { clientSubscriptionsByPattern.values.reduce(0, +) }
}

/// The result of a history query (PROTOCOL `get_event_history`).
public struct HistoryPage: Sendable {
    /// Matching records, oldest first, after the limit was applied.
    public let records: [HistoryRecord]
    /// Oldest and newest seq in the whole history (nil when it is empty).
    public let oldestSeq: Int?
    public let newestSeq: Int?
    public let capacity: Int
}
