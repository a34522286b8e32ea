/// An event a shared consumer store handed to one node to deliver (PROTOCOL §11 across a
/// cluster, §13).
public struct ClaimedEvent: Sendable {
    public var seq: Int
    /// 1 for the first delivery.
    public var attempt: Int
    /// Nil when retention already removed the event from the journal.
    public var event: Event?

    public init(seq: Int, attempt: Int, event: Event?) {
        self.seq = seq
        self.attempt = attempt
        self.event = event
    }
}

/// A consumer's figures as `get_consumers` lists them (from a daemon's own consumers, or
/// from a shared store).
public struct ConsumerSummary: Sendable {
    public var settings: ConsumerSettings
    /// Every matching event at or below it went out at least once (or is settled).
    public var position: Int
    /// Unacknowledged events (out or waiting).
    public var pending: Int
    /// Unacknowledged events that went out more than once.
    public var redelivered: Int
    public var deadLetters: Int
    public var deadLettersEvicted: Int
    /// Members connected to the other live nodes of a cluster (0 outside one).
    public var membersElsewhere: Int

    public init(
        settings: ConsumerSettings, position: Int, pending: Int, redelivered: Int, deadLetters: Int,
        deadLettersEvicted: Int, membersElsewhere: Int
    ) {
        self.settings = settings
        self.position = position
        self.pending = pending
        self.redelivered = redelivered
        self.deadLetters = deadLetters
        self.deadLettersEvicted = deadLettersEvicted
        self.membersElsewhere = membersElsewhere
    }
}
