import DequeModule
import Foundation

/// One durable consumer's bookkeeping (PROTOCOL §11), as a value: where it is in the stream,
/// what it has out, what waits for redelivery, its dead letters and its members. Every
/// change is a mutating call that returns what to deliver; the owner sends those and keeps
/// the lock. Time is passed in, so tests drive it with their own clock.
///
/// Where events come from: live events are ``offer(_:)``ed by the bus; when the consumer
/// falls behind (its backlog full) on a journaled bus it stops taking them and reads the
/// journal instead (``refillQuery`` / ``refill(_:requested:)``), keeping the live events that
/// arrive meanwhile in a bounded tail so that it can go live again without a gap.
public struct ConsumerState: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// A delivered event not acknowledged yet.
    public struct Entry: Sendable {
        public enum Phase: Sendable, Equatable {
            /// Out at `member` until `deadline`.
            case outstanding(member: Int, deadline: Instant)
            /// Waiting to go out again (at once).
            case ready
            /// Waiting until `until` (a nak with a delay).
            case delayed(until: Instant)
        }
        /// Nil when the event was restored from a journal that no longer holds it.
        public var event: Event?
        public var seq: Int
        public var type: String
        public var attempts: Int
        public var phase: Phase
        public var lastError: String?
        public var firstFailed: Date?
        public var lastFailed: Date?

        public init(
            event: Event?, seq: Int, type: String, attempts: Int, phase: Phase, lastError: String? = nil,
            firstFailed: Date? = nil, lastFailed: Date? = nil
        ) {
            self.event = event
            self.seq = seq
            self.type = type
            self.attempts = attempts
            self.phase = phase
            self.lastError = lastError
            self.firstFailed = firstFailed
            self.lastFailed = lastFailed
        }
    }

    /// What to send: `event` to `member` as attempt `attempt`.
    public struct Delivery: Sendable {
        public let member: Int
        public let event: Event
        public let attempt: Int
    }

    enum Feed: Sendable {
        /// Taking live events from the bus.
        case live
        /// Reading the journal; live events meanwhile go to `tail` (until it overflows).
        case catchingUp(tail: Deque<Event>, overflowed: Bool)
    }

    /// Live events held before the consumer falls back to the journal.
    public static let liveBacklogLimit = 4096
    /// Without a journal, the events a consumer may be behind; beyond, they are dropped and
    /// counted (``dropped``).
    public static let ephemeralBacklogLimit = 100_000
    /// Live events kept while catching up from the journal.
    public static let tailLimit = 8192
    /// Events read from the journal at once.
    public static let journalPage = 1024
    /// Dead letters kept per consumer; beyond, the oldest is evicted (counted, logged).
    public static let maximumDeadLetters = 10_000

    public let settings: ConsumerSettings
    /// True when the journal holds every event (false: in memory only).
    public let journaled: Bool
    /// The newest seq taken into the backlog (or skipped as not matching).
    public private(set) var readThrough: Int
    var feed: Feed
    var backlog: Deque<Event> = []
    public private(set) var unacked: [Int: Entry] = [:]
    /// Seqs of `.ready` entries, oldest first (may hold stale seqs: checked when taken).
    var ready: Deque<Int> = []
    public private(set) var deadLetters: [DeadLetter] = []
    /// Connection ids in join order; deliveries go round robin.
    public private(set) var members: [Int] = []
    var cursor = 0
    /// Events lost because an ephemeral consumer fell too far behind.
    public private(set) var dropped = 0
    /// Dead letters evicted because there were too many.
    public private(set) var evicted = 0

    /// A new consumer reading after `start`.
    public init(settings: ConsumerSettings, startAfter start: Int, journaled: Bool) {
        self.settings = settings
        self.journaled = journaled
        self.readThrough = start
        self.feed = journaled ? .catchingUp(tail: [], overflowed: false) : .live
    }

    /// A consumer restored from its saved state: its unacknowledged events go out again.
    public init(
        settings: ConsumerSettings, position: Int, unacked restored: [Entry], deadLetters: [DeadLetter]
    ) {
        self.init(settings: settings, startAfter: position, journaled: true)
        for var entry in restored.sorted(by: { $0.seq < $1.seq }) {
            entry.phase = .ready
            unacked[entry.seq] = entry
            ready.append(entry.seq)
        }
        self.deadLetters = deadLetters
    }

    // MARK: reading

    /// Every matching event at or below this seq went out at least once (or is settled):
    /// where a restart resumes.
    public var position: Int { backlog.first.map { $0.seq - 1 } ?? readThrough }

    /// Unacknowledged entries that went out more than once.
    public var redelivered: Int { unacked.values.count { $0.attempts > 1 } }

    /// Events read from the stream but not delivered yet.
    public var waiting: Int { backlog.count }

    /// A live event from the bus (its seq order). Returns true when it was taken.
    @discardableResult
    public mutating func offer(_ event: Event) -> Bool {
        guard event.seq > readThrough else { return false }
        switch feed {
        case .live:
            let limit = journaled ? Self.liveBacklogLimit : Self.ephemeralBacklogLimit
            if backlog.count < limit {
                backlog.append(event)
            } else if journaled {
                // The journal has it: read from there until caught up.
                feed = .catchingUp(tail: [], overflowed: false)
                return false
            } else {
                dropped += 1
            }
            readThrough = event.seq
            return true
        case .catchingUp(var tail, let overflowed):
            guard !overflowed else { return false }
            feed = .live  // let the tail be mutated in place
            if tail.count < Self.tailLimit {
                tail.append(event)
                feed = .catchingUp(tail: tail, overflowed: false)
            } else {
                feed = .catchingUp(tail: [], overflowed: true)
            }
            return false
        }
    }

    /// When the consumer should read the journal: the seq to read after (nil: not now).
    public var refillQuery: Int? {
        guard case .catchingUp = feed, backlog.count < Self.journalPage else { return nil }
        return readThrough
    }

    /// Journal events read after `after` (a ``refillQuery``), `requested` asked for: appended
    /// to the backlog; a short page means the journal is read to its end, so the live tail
    /// follows and the consumer goes live again.
    public mutating func refill(_ events: [Event], after: Int, requested: Int) {
        guard case .catchingUp(let tail, let overflowed) = feed, readThrough == after else { return }
        for event in events where event.seq > readThrough {
            backlog.append(event)
            readThrough = event.seq
        }
        guard events.count < requested else { return }
        if overflowed {
            // Live events were missed meanwhile; the next read (begun after this) has them.
            feed = .catchingUp(tail: [], overflowed: false)
            return
        }
        for event in tail where event.seq > readThrough {
            backlog.append(event)
            readThrough = event.seq
        }
        feed = .live
    }

    // MARK: members

    public mutating func join(_ member: Int) {
        guard !members.contains(member) else { return }
        members.append(member)
    }

    /// A member left: what it had out goes to the others at once.
    public mutating func leave(_ member: Int) {
        guard let index = members.firstIndex(of: member) else { return }
        members.remove(at: index)
        if cursor > index { cursor -= 1 }
        for (seq, entry) in unacked.sorted(by: { $0.key < $1.key }) {
            if case .outstanding(let holder, _) = entry.phase, holder == member {
                unacked[seq]?.phase = .ready
                ready.append(seq)
            }
        }
    }

    public func isMember(_ member: Int) -> Bool { members.contains(member) }

    // MARK: acknowledgements

    /// Acknowledges `seq` if it is unacknowledged (from any member). Returns 1 or 0.
    public mutating func ack(_ seq: Int) -> Int {
        unacked.removeValue(forKey: seq) == nil ? 0 : 1
    }

    /// Acknowledges every event out at `member` with a seq at or below `upTo`.
    public mutating func ack(upTo: Int, member: Int) -> Int {
        let doomed = unacked.filter { seq, entry in
            guard seq <= upTo, case .outstanding(let holder, _) = entry.phase else { return false }
            return holder == member
        }
        for seq in doomed.keys { unacked[seq] = nil }
        return doomed.count
    }

    /// A negative acknowledgement: the event goes out again after `delay` (at once when nil),
    /// or becomes a dead letter when it has used its attempts. Returns false when `seq` was
    /// not out.
    public mutating func nak(
        _ seq: Int, delay: Duration?, error: String?, now: Instant, wall: Date, nextDeadLetterID: () -> Int
    ) -> Bool {
        guard var entry = unacked[seq], case .outstanding = entry.phase else { return false }
        entry.lastError = error ?? "nak"
        entry.firstFailed = entry.firstFailed ?? wall
        entry.lastFailed = wall
        unacked[seq] = entry
        if entry.attempts >= settings.maxDeliver {
            bury(seq, id: nextDeadLetterID())
        } else if let delay, delay > .zero {
            unacked[seq]?.phase = .delayed(until: now + delay)
        } else {
            unacked[seq]?.phase = .ready
            ready.append(seq)
        }
        return true
    }

    /// Expired deliveries go out again (or become dead letters); delayed ones that are due
    /// become ready. Returns how many changed.
    public mutating func expire(now: Instant, wall: Date, nextDeadLetterID: () -> Int) -> Int {
        var changed = 0
        for (seq, entry) in unacked.sorted(by: { $0.key < $1.key }) {
            switch entry.phase {
            case .outstanding(_, let deadline) where deadline <= now:
                changed += 1
                unacked[seq]?.lastError = entry.lastError ?? "ack_wait expired"
                unacked[seq]?.firstFailed = entry.firstFailed ?? wall
                unacked[seq]?.lastFailed = wall
                if entry.attempts >= settings.maxDeliver {
                    unacked[seq]?.lastError = "ack_wait expired"
                    bury(seq, id: nextDeadLetterID())
                } else {
                    unacked[seq]?.phase = .ready
                    ready.append(seq)
                }
            case .delayed(let until) where until <= now:
                changed += 1
                unacked[seq]?.phase = .ready
                ready.append(seq)
            default:
                break
            }
        }
        return changed
    }

    /// True when something is out or waiting (the owner's timer has work).
    public var hasTimedWork: Bool { !unacked.isEmpty }

    private mutating func bury(_ seq: Int, id: Int) {
        guard let entry = unacked.removeValue(forKey: seq) else { return }
        if deadLetters.count >= Self.maximumDeadLetters {
            deadLetters.removeFirst()
            evicted += 1
        }
        deadLetters.append(
            DeadLetter(
                id: id, consumer: settings.name, seq: seq, eventType: entry.type, attempts: entry.attempts,
                lastError: entry.lastError ?? "max_deliver reached", firstFailed: entry.firstFailed ?? Date(),
                lastFailed: entry.lastFailed ?? Date(), event: entry.event))
    }

    // MARK: dead letters

    /// Sends a dead letter to the consumer again, attempts from 1. False when `id` is not here.
    public mutating func retry(deadLetter id: Int) -> Bool {
        guard let index = deadLetters.firstIndex(where: { $0.id == id }) else { return false }
        let letter = deadLetters.remove(at: index)
        unacked[letter.seq] = Entry(
            event: letter.event, seq: letter.seq, type: letter.eventType, attempts: 0, phase: .ready,
            lastError: letter.lastError, firstFailed: letter.firstFailed, lastFailed: letter.lastFailed)
        ready.append(letter.seq)
        return true
    }

    /// Removes a dead letter. Returns 1 or 0.
    public mutating func discard(deadLetter id: Int) -> Int {
        guard let index = deadLetters.firstIndex(where: { $0.id == id }) else { return 0 }
        deadLetters.remove(at: index)
        return 1
    }

    /// Fills in the event of a dead letter (restored without it).
    public mutating func attach(_ event: Event, toDeadLetter id: Int) {
        guard let index = deadLetters.firstIndex(where: { $0.id == id }) else { return }
        deadLetters[index].event = event
    }

    // MARK: delivering

    /// What can go out now: ready redeliveries first, then new events while fewer than
    /// `max_in_flight` are unacknowledged, round robin over the members `available` accepts
    /// (none when every member is busy or there is none). An entry whose event is gone (a
    /// journal pruned before a restart) becomes a dead letter.
    public mutating func take(
        now: Instant, available: (Int) -> Bool, nextDeadLetterID: () -> Int
    ) -> [Delivery] {
        var out: [Delivery] = []
        while !members.isEmpty {
            guard let member = nextMember(available) else { break }
            if let seq = ready.first {
                ready.removeFirst()
                guard var entry = unacked[seq], entry.phase == .ready else { continue }
                guard let event = entry.event else {
                    unacked[seq]?.lastError = "event no longer in the journal"
                    bury(seq, id: nextDeadLetterID())
                    continue
                }
                entry.attempts += 1
                entry.phase = .outstanding(member: member, deadline: now + settings.ackWait)
                unacked[seq] = entry
                out.append(Delivery(member: member, event: event, attempt: entry.attempts))
            } else if unacked.count < settings.maxInFlight, let event = backlog.popFirst() {
                unacked[event.seq] = Entry(
                    event: event, seq: event.seq, type: event.type, attempts: 1,
                    phase: .outstanding(member: member, deadline: now + settings.ackWait))
                out.append(Delivery(member: member, event: event, attempt: 1))
            } else {
                break
            }
            cursor += 1
        }
        return out
    }

    /// The next member in turn that `available` accepts (the cursor stays on it).
    private mutating func nextMember(_ available: (Int) -> Bool) -> Int? {
        for step in 0..<members.count {
            let index = (cursor + step) % members.count
            if available(members[index]) {
                cursor = index
                return members[index]
            }
        }
        return nil
    }
}
