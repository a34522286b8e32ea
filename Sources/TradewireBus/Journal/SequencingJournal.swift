import Foundation

/// A journal that assigns seqs itself when a batch commits: a cluster's shared journal
/// (PROTOCOL §13), where several daemons publish into one seq space.
///
/// A bus on such a journal (``EventBus/sequenced(by:after:historyCapacity:logger:clock:dispatchScope:)``)
/// queues publishes without a seq, appends them in batches from its writer thread, and
/// delivers every event, its own and other nodes', only when the journal's tail hands it
/// over in seq order (``EventBus/deliverSequenced(_:)``).
public protocol SequencingJournal: Sendable {
    /// Stores `events` (their `seq` is ignored) as one batch with consecutive seqs. Called
    /// from the bus's writer thread, one batch at a time; it may block. After any failure
    /// but a ``SequencingRefusal`` the same batch is retried under the same `batchKey`: a
    /// key is applied at most once. `fence`, when set, is the leader epoch the batch was
    /// published under: refused (``SequencingRefusal``) once that epoch no longer leads.
    func append(_ events: [Event], batchKey: String, fence: Int?) throws

    /// How long a batch is retried before its publishers are told the journal is unavailable.
    var giveUpAfter: Duration { get }
}

/// An event a sequencing journal committed, as its tail hands it to the bus.
public struct SequencedDelivery: Sendable {
    /// The event with its seq (built from the stored record).
    public var event: Event
    /// The node that accepted the publish.
    public var node: String?
    /// The batch it was appended in, and its place there: a batch this bus appended is
    /// delivered as the event its publisher gave (with the typed payload its in-process
    /// handlers expect), and answers that publisher.
    public var batchKey: String
    public var index: Int

    public init(event: Event, node: String?, batchKey: String, index: Int) {
        self.event = event
        self.node = node
        self.batchKey = batchKey
        self.index = index
    }
}

/// A sequencing journal's final no (a fenced epoch): the batch is not retried.
public struct SequencingRefusal: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
