import Foundation
import Logging
import PostgresNIO
import TradewireBus
import TradewireJSON

/// Durable consumers shared by every node of a cluster (PROTOCOL §11, §13), as claims with
/// a visibility timeout in PostgreSQL (``ClusterConsumerSchema``): a node with members
/// claims events (`tw_claim`, one statement), delivers them, and deletes each claim when it
/// is acknowledged. A claim not acknowledged by its deadline (its node died, its member is
/// slow) becomes visible to every node and goes out again with its attempt counted; after
/// `max_deliver` attempts it moves to `tw_dead_letters`.
///
/// Consumer rows are written without waiting for the disk: after a database crash a claim
/// or an acknowledgement may be lost, and the event goes out again (at least once, as
/// promised).
public struct ClusterConsumers: Sendable {
    public let database: ClusterDatabase
    public let nodeID: String
    /// Consumers a cluster holds (as one daemon).
    public static let maximumConsumers = 1024

    public init(database: ClusterDatabase, nodeID: String) {
        self.database = database
        self.nodeID = nodeID
    }

    /// The consumer `settings.name`: created with `settings`, reading after `since` (nil:
    /// the journal's newest seq), when it does not exist. Returns the stored settings (an
    /// existing consumer's) and whether it was created. `.overloaded` beyond
    /// ``maximumConsumers``.
    public func open(_ settings: ConsumerSettings, since: Int?) async throws(ClusterError) -> (
        settings: ConsumerSettings, created: Bool
    ) {
        let name = settings.name
        let pattern = settings.pattern.text
        let like = ClusterJournal.likePattern(pattern)
        let limit = Self.maximumConsumers
        let rows = try await database.query(
            """
            SELECT * FROM tw_open_consumer(\(name), \(pattern), \(like), \(settings.ackWaitMilliseconds),
                \(settings.maxDeliver), \(settings.maxInFlight), \(since)::bigint, \(limit))
            """, "opening consumer \(name)")
        guard let row = rows.first,
            let (storedPattern, ackWait, maxDeliver, maxInFlight, created) = try? row.decode(
                (String, Int, Int, Int, Bool).self)
        else { throw ClusterError(.database, "opening consumer \(name): unexpected result") }
        guard let stored = try? EventPattern(storedPattern) else {
            throw ClusterError(.database, "consumer \(name) has an unreadable pattern '\(storedPattern)'")
        }
        return (
            ConsumerSettings(
                name: name, pattern: stored, ackWaitMilliseconds: ackWait, maxDeliver: maxDeliver,
                maxInFlight: maxInFlight),
            created
        )
    }

    /// Claims up to `limit` events of `consumer` for this node (redeliveries first).
    /// `.notFound` when the consumer was deleted.
    public func claim(_ consumer: String, limit: Int) async throws(ClusterError) -> [ClaimedEvent] {
        let node = nodeID
        let limit = max(1, min(limit, 10_000))
        let rows = try await database.queryWithoutFlush(
            "SELECT * FROM tw_claim(\(consumer), \(node), \(limit))", "claiming events of consumer \(consumer)")
        do {
            return try rows.map { row in
                let (seq, attempt, found, type, micros, data, metadata, dataType) = try row.decode(
                    (Int, Int, Bool, String?, Int64?, String?, String?, String?).self)
                guard found, let type, let micros, let data, let metadata, let dataType else {
                    return ClaimedEvent(seq: seq, attempt: attempt, event: nil)
                }
                let record = ClusterJournal.record(seq, type, micros, data, metadata, dataType)
                return ClaimedEvent(seq: seq, attempt: attempt, event: Event(record: record))
            }
        } catch {
            throw ClusterError(.database, "claiming events of consumer \(consumer): unexpected row (\(error))")
        }
    }

    /// Gives back claims this node holds (a member left, or nobody here could take them):
    /// they go out again at once, to any node. `undelivered`: they never went out, so their
    /// attempt is not counted.
    public func release(_ consumer: String, seqs: [Int], undelivered: Bool = false) async throws(ClusterError) {
        guard !seqs.isEmpty else { return }
        let node = nodeID
        let undo = undelivered ? 1 : 0
        _ = try await database.queryWithoutFlush(
            """
            UPDATE tw_claims SET node_id = NULL, visible_at = clock_timestamp(), attempts = attempts - \(undo)
            WHERE consumer = \(consumer) AND node_id = \(node) AND seq = ANY(\(seqs))
            """, "releasing claims of consumer \(consumer)")
    }

    /// Gives back every claim this node holds (a restart: the members that had them are gone).
    public func releaseAll() async throws(ClusterError) {
        let node = nodeID
        _ = try await database.queryWithoutFlush(
            "UPDATE tw_claims SET node_id = NULL, visible_at = clock_timestamp() WHERE node_id = \(node)",
            "releasing node \(node)'s claims")
    }

    /// Acknowledges `seq` (out or waiting, at any node). Returns 1 or 0.
    public func ack(_ consumer: String, seq: Int) async throws(ClusterError) -> Int {
        try await database.queryWithoutFlush(
            "DELETE FROM tw_claims WHERE consumer = \(consumer) AND seq = \(seq) RETURNING seq",
            "acknowledging seq \(seq) of consumer \(consumer)"
        ).count
    }

    /// Acknowledges the claims among `seqs` that this node still holds. Returns how many.
    public func ack(_ consumer: String, seqs: [Int]) async throws(ClusterError) -> Int {
        guard !seqs.isEmpty else { return 0 }
        let node = nodeID
        return try await database.queryWithoutFlush(
            """
            DELETE FROM tw_claims WHERE consumer = \(consumer) AND node_id = \(node) AND seq = ANY(\(seqs))
            RETURNING seq
            """, "acknowledging events of consumer \(consumer)"
        ).count
    }

    /// A negative acknowledgement of an event that is out: it goes out again after `delay`
    /// (at once when zero), or becomes a dead letter. False when it was not out.
    public func nak(_ consumer: String, seq: Int, delay: Duration, error: String?) async throws(ClusterError) -> Bool {
        let milliseconds = Int64(delay.components.seconds) * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        let rows = try await database.queryWithoutFlush(
            "SELECT tw_nak(\(consumer), \(seq), \(milliseconds), \(error))", "nak of seq \(seq) of consumer \(consumer)"
        )
        return (try? rows.first?.decode(Bool.self)) ?? false
    }

    /// Moves claims to the dead letters with `error` (events no longer in the journal).
    public func bury(_ consumer: String, seqs: [Int], error: String) async throws(ClusterError) {
        guard !seqs.isEmpty else { return }
        _ = try await database.queryWithoutFlush(
            "SELECT tw_bury(\(consumer), \(seqs), \(error))", "burying events of consumer \(consumer)")
    }

    /// Records how many members each consumer has on this node.
    public func publishMembers(_ counts: [String: Int]) async throws(ClusterError) {
        guard !counts.isEmpty else { return }
        let node = nodeID
        let names = Array(counts.keys)
        let members = names.map { counts[$0] ?? 0 }
        _ = try await database.queryWithoutFlush(
            """
            INSERT INTO tw_consumer_members (consumer, node_id, members)
            SELECT u.name, \(node), u.members FROM unnest(\(names)::text[], \(members)::integer[]) AS u(name, members)
            WHERE EXISTS (SELECT 1 FROM tw_consumers c WHERE c.name = u.name)
            ON CONFLICT (consumer, node_id) DO UPDATE SET members = excluded.members
            """, "recording node \(node)'s consumer members")
    }

    /// Every consumer, by name.
    public func list() async throws(ClusterError) -> [ConsumerSummary] {
        let node = nodeID
        let window = ClusterNodes.livenessWindow.inSeconds
        let rows = try await database.query(
            """
            SELECT c.name, c.pattern, c.ack_wait_ms, c.max_deliver, c.max_in_flight, c.position,
                (SELECT count(*) FROM tw_claims k WHERE k.consumer = c.name),
                (SELECT count(*) FROM tw_claims k WHERE k.consumer = c.name AND k.attempts > 1),
                (SELECT count(*) FROM tw_dead_letters d WHERE d.consumer = c.name),
                c.dead_letters_evicted,
                (SELECT coalesce(sum(m.members), 0) FROM tw_consumer_members m
                    JOIN tw_nodes n ON n.node_id = m.node_id
                    WHERE m.consumer = c.name AND m.node_id <> \(node) AND NOT n.stopped
                        AND n.last_seen > clock_timestamp() - make_interval(secs => \(window)))
            FROM tw_consumers c ORDER BY c.name
            """, "listing consumers")
        do {
            return try rows.compactMap { row in
                let (
                    name, pattern, ackWait, maxDeliver, maxInFlight, position, pending, redelivered, letters, evicted,
                    elsewhere
                ) = try row.decode((String, String, Int, Int, Int, Int, Int, Int, Int, Int, Int).self)
                guard let pattern = try? EventPattern(pattern) else { return nil }
                return ConsumerSummary(
                    settings: ConsumerSettings(
                        name: name, pattern: pattern, ackWaitMilliseconds: ackWait, maxDeliver: maxDeliver,
                        maxInFlight: maxInFlight),
                    position: position, pending: pending, redelivered: redelivered, deadLetters: letters,
                    deadLettersEvicted: evicted, membersElsewhere: elsewhere)
            }
        } catch {
            throw ClusterError(.database, "listing consumers: unexpected row (\(error))")
        }
    }

    /// Removes a consumer with its claims, members and dead letters. Returns 1 or 0.
    public func delete(_ consumer: String) async throws(ClusterError) -> Int {
        try await database.query(
            "DELETE FROM tw_consumers WHERE name = \(consumer) RETURNING name", "deleting consumer \(consumer)"
        ).count
    }

    // MARK: dead letters

    /// The oldest `limit` dead letters (of `consumer`, or of every consumer), each with its
    /// event while the journal holds it.
    public func deadLetters(consumer: String?, limit: Int) async throws(ClusterError) -> [DeadLetter] {
        let limit = max(0, min(limit, ClusterConsumerSchema.maximumDeadLetters * Self.maximumConsumers))
        let rows = try await database.query(
            """
            SELECT d.id, d.consumer, d.seq, d.event_type, d.attempts, d.last_error,
                (extract(epoch FROM d.first_failed) * 1000000)::bigint,
                (extract(epoch FROM d.last_failed) * 1000000)::bigint,
                e.ts_us, e.data, e.metadata, e.data_type
            FROM tw_dead_letters d LEFT JOIN tw_events e ON e.seq = d.seq
            WHERE \(consumer)::text IS NULL OR d.consumer = \(consumer)
            ORDER BY d.id LIMIT \(limit)
            """, "reading dead letters")
        do {
            return try rows.map { row in
                let (id, name, seq, type, attempts, error, first, last, micros, data, metadata, dataType) =
                    try row.decode(
                        (Int, String, Int, String, Int, String, Int64, Int64, Int64?, String?, String?, String?).self)
                var event: Event?
                if let micros, let data, let metadata, let dataType {
                    event = Event(record: ClusterJournal.record(seq, type, micros, data, metadata, dataType))
                }
                return DeadLetter(
                    id: id, consumer: name, seq: seq, eventType: type, attempts: attempts, lastError: error,
                    firstFailed: Date(timeIntervalSince1970: Double(first) / 1_000_000),
                    lastFailed: Date(timeIntervalSince1970: Double(last) / 1_000_000), event: event)
            }
        } catch {
            throw ClusterError(.database, "reading dead letters: unexpected row (\(error))")
        }
    }

    /// Sends dead letter `id` to its consumer again, attempts from 1. False when there is none.
    public func retry(deadLetter id: Int) async throws(ClusterError) -> Bool {
        let rows = try await database.query(
            """
            WITH letter AS (DELETE FROM tw_dead_letters WHERE id = \(id) RETURNING *),
            waiting AS (
                INSERT INTO tw_claims (consumer, seq, event_type, attempts, node_id, visible_at, last_error,
                    first_failed, last_failed)
                SELECT consumer, seq, event_type, 0, NULL, clock_timestamp(), last_error, first_failed, last_failed
                FROM letter ON CONFLICT (consumer, seq) DO NOTHING)
            SELECT count(*) FROM letter
            """, "retrying dead letter \(id)")
        return ((try? rows.first?.decode(Int.self)) ?? 0) > 0
    }

    /// Removes dead letter `id`. Returns 1 or 0.
    public func discard(deadLetter id: Int) async throws(ClusterError) -> Int {
        try await database.query(
            "DELETE FROM tw_dead_letters WHERE id = \(id) RETURNING id", "discarding dead letter \(id)"
        ).count
    }
}
