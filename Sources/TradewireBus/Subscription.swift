/// Identifies a subscription on the bus; rendered on the wire as `s-N`.
public struct SubscriptionID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public var description: String { "s-\(rawValue)" }

    /// Parses the wire form `s-N`.
    public init?(_ text: String) {
        guard text.hasPrefix("s-"), let n = Int(text.dropFirst(2)), n > 0 else { return nil }
        rawValue = n
    }
}

/// Who holds a subscription. Client subscriptions are what `get_stats` reports under the
/// reference keys; the daemon's own handlers are counted apart as internal handlers.
public enum SubscriberOwner: Sendable, Hashable {
    /// An in-process handler, named (e.g. `pipeline.strategy`). Subscribing the same name to
    /// the same pattern twice is a no-op.
    case inProcess(String)
    /// A remote client connection.
    case client(connection: Int)

    public var isClient: Bool { if case .client = self { true } else { false } }
}

/// How a subscriber receives events.
public enum EventHandler: Sendable {
    /// Runs concurrently with the publish's other async handlers; `publish` awaits it.
    /// A thrown error is counted and logged, never propagated.
    case async(@Sendable (Event) async throws -> Void)
    /// Runs inline, in seq order, while the bus holds its delivery lock: it must be quick,
    /// must not block and must not call back into the bus (a socket outbox enqueue is the
    /// intended use). A thrown error is counted and logged.
    case sync(@Sendable (Event) throws -> Void)
}

/// A registered subscriber, as the bus stores it (a reference, so that match lists cost
/// one pointer per subscriber).
final class Subscriber: Sendable {
    let id: SubscriptionID
    let pattern: EventPattern
    let owner: SubscriberOwner
    let handler: EventHandler

    init(id: SubscriptionID, pattern: EventPattern, owner: SubscriberOwner, handler: EventHandler) {
        self.id = id
        self.pattern = pattern
        self.owner = owner
        self.handler = handler
    }

    /// The handler, when it is async (run by the publish's ``PublishedEvent/handlersFinished()``).
    var asyncHandler: (@Sendable (Event) async throws -> Void)? {
        if case .async(let handle) = handler { handle } else { nil }
    }
}

/// What `subscribe` did.
public struct SubscribeOutcome: Sendable {
    public let id: SubscriptionID
    /// False when the owner already had this pattern and the existing subscription was returned.
    public let created: Bool
}

/// The replay a new subscription asks for (PROTOCOL `since_seq`).
public struct ReplayRequest: Sendable {
    /// Events with `seq > sinceSeq` still in history are delivered before live ones.
    public let sinceSeq: Int
    public init(sinceSeq: Int) { self.sinceSeq = sinceSeq }
}

/// Told to a new subscription before any of its events: `missed` is the range of seqs the
/// replay asked for that history no longer holds (they may have matched).
public struct ReplayGap: Sendable, Equatable {
    public let firstSeq: Int
    public let lastSeq: Int
}
