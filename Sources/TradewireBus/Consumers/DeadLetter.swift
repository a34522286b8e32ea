import Foundation

/// An event a consumer gave up on after `max_deliver` attempts (PROTOCOL §11). It stays
/// until retried or discarded; reading it removes nothing.
public struct DeadLetter: Sendable {
    /// Daemon-wide, never reused (it survives restarts with the journal).
    public let id: Int
    public let consumer: String
    public let seq: Int
    public let eventType: String
    public let attempts: Int
    public let lastError: String
    public let firstFailed: Date
    public let lastFailed: Date
    /// The event itself; nil when restored and not read back from the journal yet (or pruned).
    public var event: Event?

    public init(
        id: Int, consumer: String, seq: Int, eventType: String, attempts: Int, lastError: String, firstFailed: Date,
        lastFailed: Date, event: Event?
    ) {
        self.id = id
        self.consumer = consumer
        self.seq = seq
        self.eventType = eventType
        self.attempts = attempts
        self.lastError = lastError
        self.firstFailed = firstFailed
        self.lastFailed = lastFailed
        self.event = event
    }
}
