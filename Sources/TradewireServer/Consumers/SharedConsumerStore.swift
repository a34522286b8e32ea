import TradewireBus
import TradewireRPC

/// Durable consumers kept outside the daemon, shared by every daemon that uses the same
/// store (a cluster's database: PROTOCOL §11 across §13). Positions, unacknowledged events
/// with their attempts, and dead letters live in the store; a daemon only knows which of
/// its connections are members and what it handed to each. Every failure is the JSON-RPC
/// error to answer (-32003 while the store cannot be reached).
public protocol SharedConsumerStore: Sendable {
    /// The consumer `settings.name`: created with `settings`, reading after `since` (nil:
    /// after the newest event), when it does not exist. Returns the stored settings (an
    /// existing consumer's) and whether it was created.
    func open(_ settings: ConsumerSettings, since: Int?) async throws(RPCError) -> (
        settings: ConsumerSettings, created: Bool
    )
    /// Takes up to `limit` events for this daemon's members (redeliveries first); nil when
    /// the consumer no longer exists.
    func claim(_ consumer: String, limit: Int) async throws(RPCError) -> [ClaimedEvent]?
    /// Gives back events this daemon took (`undelivered`: they never went out, so their
    /// attempt does not count): they go out again at once, on any daemon.
    func release(_ consumer: String, seqs: [Int], undelivered: Bool) async throws(RPCError)
    /// Gives back everything this daemon has out (it stops).
    func releaseAll() async throws(RPCError)
    /// Acknowledges `seq`, wherever it is out. Returns 1 or 0.
    func ack(_ consumer: String, seq: Int) async throws(RPCError) -> Int
    /// Acknowledges those of `seqs` that this daemon still has out. Returns how many.
    func ack(_ consumer: String, seqs: [Int]) async throws(RPCError) -> Int
    /// Gives an event that is out back, to go out again after `delay` (or to become a dead
    /// letter when its attempts are used). False when it was not out.
    func nak(_ consumer: String, seq: Int, delay: Duration, error: String?) async throws(RPCError) -> Bool
    /// Moves events to the dead letters with `error` (events the journal no longer holds).
    func bury(_ consumer: String, seqs: [Int], error: String) async throws(RPCError)
    /// Records how many members each consumer has on this daemon.
    func publishMembers(_ counts: [String: Int]) async throws(RPCError)
    /// Every consumer, by name.
    func list() async throws(RPCError) -> [ConsumerSummary]
    /// Removes a consumer with its position and dead letters. Returns 1 or 0.
    func delete(_ consumer: String) async throws(RPCError) -> Int
    /// The oldest `limit` dead letters (of `consumer`, or of every consumer).
    func deadLetters(consumer: String?, limit: Int) async throws(RPCError) -> [DeadLetter]
    /// Sends a dead letter to its consumer again, attempts from 1. False when there is none.
    func retry(deadLetter id: Int) async throws(RPCError) -> Bool
    /// Removes a dead letter. Returns 1 or 0.
    func discard(deadLetter id: Int) async throws(RPCError) -> Int
}
