import DequeModule
import Foundation
import Logging
import Synchronization
import TradewireJSON

/// The in-process event bus: daemon-wide seq numbers, glob subscriptions, a bounded history
/// ring and lifetime counters.
///
/// Semantics kept from the reference: publishing records history even with no subscriber,
/// awaits every in-process handler (run concurrently), and never fails because a handler
/// did; subscribing the same owner to the same pattern twice is a no-op.
///
/// State lives behind one `Mutex` rather than an actor: a publish takes the lock once to
/// assign its seq, record history and hand the event to synchronous sinks in seq order, so
/// the hot path has no executor hop.
public final class EventBus: Sendable {
    /// Default history capacity.
    public static let defaultHistoryCapacity = 1000
    /// Distinct event types counted one by one in `publishedByType`; later ones share `(other)`.
    public static let maximumTrackedTypes = 10_000

    private let state: Mutex<State>
    private let logger: Logger
    /// Where a publish's async handlers count their failures. Published events hold this,
    /// not the bus: the bus is weakly referenced (by its journal's writer), which sends every
    /// retain and release of it through a side table, too slow for each publish.
    private let asyncFailures: AsyncHandlerFailures
    private let clock: @Sendable () -> Date
    /// Capture before dispatch: set when the bus has a journal (nil: ephemeral).
    private let writer: JournalWriter?
    /// True when the journal assigns seqs (a cluster): publishes wait for the tail.
    private let sequenced: Bool
    /// Wraps each delivery the sequencing journal's tail hands over.
    private let deliveryScope: @Sendable (() -> Void) -> Void
    /// A sequencing journal's fence for a publish (a leader epoch, or nil).
    private let fencing: @Sendable (_ type: String, _ metadata: JSONObject) -> Int?
    /// Whether the publishing thread commits its journal batch itself (see ``journaled(_:historyCapacity:logger:clock:dispatchScope:callerCommits:)``).
    private let callerCommits: @Sendable (EventBus) -> Bool

    private struct State {
        var nextSeq = 1
        /// The newest seq delivered (on a journaled bus, committed events wait before this).
        var dispatchedSeq = 0
        var nextSubscriptionID = 1
        var subscribers: [SubscriptionID: Subscriber] = [:]
        var byOwnerAndPattern: [SubscriberOwner: [EventPattern: SubscriptionID]] = [:]
        var clientPatternCounts: [String: Int] = [:]
        var internalPatternCounts: [String: Int] = [:]
        /// Every subscriber, in id order (ids only grow, so appending keeps the order).
        var ordered: [Subscriber] = []
        /// Bumped on every subscription change: a match list computed outside the lock is
        /// used only if no subscription changed meanwhile.
        var generation = 0
        /// Per published event type (at most ``EventBus/maximumTrackedTypes``): its count and
        /// its match list, both found with one lookup per publish.
        var types: [String: TypeEntry] = [:]
        /// Publishes of types beyond the tracked ones (`(other)`).
        var otherPublished = 0
        /// Match lists of types without an entry in `types` (looked up before their first
        /// publish, or beyond the tracked ones).
        var untrackedMatches: [String: [Subscriber]] = [:]
        /// Σ (matched subscribers + 1) over every cached list: bounded by ``EventBus/maximumCachedMatches``.
        var cachedMatches = 0
        /// Entries of `types` holding a match list (none: dropping the lists skips the walk).
        var typesWithMatches = 0
        var history: Deque<HistoryRecord> = []
        var historyCapacity: Int
        var published = 0
        var delivered = 0
        var handlerErrors = 0
        /// A sequencing journal's batches appended by this bus and not yet delivered back,
        /// by batch key (bounded by the writer's queue: at most one batch is in flight).
        var pendingBatches: [String: [JournalWriter.Entry]] = [:]
        /// Publish timestamps' text, formatted a second at a time.
        var timestamps = RFC3339SecondCache()

        /// One event type's publish count, and its subscribers while subscriptions are unchanged.
        struct TypeEntry {
            var published: Int
            var matched: [Subscriber]?
        }

        /// The cached match list of a type about to be published, counting the publish when
        /// it is there (one hash for a tracked type). Nil when not cached (nothing counted).
        mutating func publishing(_ type: String) -> [Subscriber]? {
            if let index = types.index(forKey: type) {
                guard let matched = types.values[index].matched else { return nil }
                types.values[index].published += 1
                return matched
            }
            guard let matched = untrackedMatches[type] else { return nil }
            countPublish(type)
            return matched
        }

        /// Counts a publish of `type` (a new tracked type takes its match list along).
        mutating func countPublish(_ type: String) {
            if let index = types.index(forKey: type) {
                types.values[index].published += 1
            } else if types.count < EventBus.maximumTrackedTypes {
                let matched = untrackedMatches.removeValue(forKey: type)
                if matched != nil { typesWithMatches += 1 }
                types[type] = TypeEntry(published: 1, matched: matched)
            } else {
                otherPublished += 1
            }
        }

        /// The cached match list of `type`, nothing counted.
        func cachedMatching(_ type: String) -> [Subscriber]? {
            if let entry = types[type] { return entry.matched }
            return untrackedMatches[type]
        }

        /// Keeps `found` as the match list of `type`, which has none (the caller's lookup
        /// missed under this lock). Nothing is kept when the list alone exceeds the bound;
        /// every list is dropped first when it would take the cache over it.
        mutating func cache(_ type: String, _ found: [Subscriber]) {
            let cost = found.count + 1
            guard cost <= EventBus.maximumCachedMatches else { return }
            if cachedMatches + cost > EventBus.maximumCachedMatches {
                dropMatches()
            }
            if let index = types.index(forKey: type) {
                types.values[index].matched = found
                typesWithMatches += 1
            } else {
                untrackedMatches[type] = found
            }
            cachedMatches += cost
        }

        /// Forgets every match list (the counts stay).
        mutating func dropMatches() {
            untrackedMatches.removeAll(keepingCapacity: true)
            if typesWithMatches > 0 {
                for index in types.indices { types.values[index].matched = nil }
                typesWithMatches = 0
            }
            cachedMatches = 0
        }

        mutating func subscriptionsChanged() {
            generation &+= 1
            dropMatches()
        }

        /// Matches under the lock (the fallback when subscriptions keep changing).
        mutating func matching(_ type: String) -> [Subscriber] {
            if let cached = cachedMatching(type) { return cached }
            let found = ordered.filter { $0.pattern.matches(type) }
            cache(type, found)
            return found
        }

        /// Matches under the lock and counts a publish of `type`.
        mutating func matchingPublish(_ type: String) -> [Subscriber] {
            if let cached = publishing(type) { return cached }
            let found = matching(type)
            countPublish(type)
            return found
        }

        /// Lifetime publishes per type, `(other)` summing those beyond the tracked ones.
        var publishedByType: [String: Int] {
            var counts = types.mapValues(\.published)
            if otherPublished > 0 { counts["(other)", default: 0] += otherPublished }
            return counts
        }
    }

    /// Matched subscribers kept per event type, counted as Σ (matches + 1): a bound on the
    /// cache's memory (8 bytes a match) whatever the number of types and subscriptions.
    public static let maximumCachedMatches = 1 << 18
    /// Distinct client patterns remembered with a zero count (reference `get_stats` keeps
    /// them); beyond this, zero-count patterns are forgotten.
    public static let maximumRememberedPatterns = 10_000

    /// - Parameters:
    ///   - historyCapacity: records kept in the history ring (at least 1).
    ///   - clock: the timestamp source (injected for tests).
    public convenience init(
        historyCapacity: Int = EventBus.defaultHistoryCapacity,
        logger: Logger = Logger(label: "tradewire.bus"),
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(historyCapacity: historyCapacity, logger: logger, clock: clock, storage: .ephemeral, firstSeq: 1)
    }

    /// A bus that keeps every event in `journal` before anyone sees it: seq continues after
    /// the journal's newest, each publish is dispatched (and acknowledged) once its batch
    /// committed. Call ``close()`` before dropping it.
    ///
    /// `dispatchScope` wraps the delivery of each committed batch (a server coalesces its
    /// event-loop wake-ups there).
    ///
    /// `callerCommits` is asked on each publish: true when the publishing thread will call
    /// ``commitWaitingEvents()`` soon (an event loop, once its round of reads is over), so the
    /// journal's writer thread is not woken for that event. The batch then commits on that
    /// thread, which answers its publishers and wakes its subscribers with no hand-off.
    public static func journaled(
        _ journal: any EventJournal, historyCapacity: Int = EventBus.defaultHistoryCapacity,
        logger: Logger = Logger(label: "tradewire.bus"), clock: @escaping @Sendable () -> Date = { Date() },
        dispatchScope: @escaping @Sendable (() -> Void) -> Void = { $0() },
        callerCommits: @escaping @Sendable (EventBus) -> Bool = { _ in false }
    ) throws(JournalError) -> EventBus {
        let newest = try journal.newestSeq()
        return EventBus(
            historyCapacity: historyCapacity, logger: logger, clock: clock,
            storage: .journal(journal, dispatchScope), firstSeq: newest + 1, callerCommits: callerCommits)
    }

    /// Commits a batch of the events waiting for the journal on the calling thread, and
    /// delivers it (see `callerCommits` in ``journaled(_:historyCapacity:logger:clock:dispatchScope:callerCommits:)``).
    /// Whatever it leaves (a commit already running elsewhere, a failed append, more than one
    /// batch) goes to the journal's writer thread. Nothing when the bus is not journaled.
    public func commitWaitingEvents() {
        writer?.commitOnCaller()
    }

    /// A bus on a journal that assigns seqs (a cluster's shared journal): publishes are
    /// appended in batches and acknowledged once the journal's tail delivered them back;
    /// every event, this bus's and other publishers', is delivered in seq order through
    /// ``deliverSequenced(_:)``, starting after `newestSeq`. Call ``close()`` before dropping it.
    ///
    /// In-process async handlers run for this bus's own publishes only (their publisher
    /// awaits them); events from elsewhere reach client subscriptions, synchronous handlers
    /// and history.
    ///
    /// `fencing` gives, at publish time, the leader epoch a publish must be fenced with
    /// (nil: none): such a publish is refused, and its publisher told, once that epoch no
    /// longer holds the lease.
    public static func sequenced(
        by journal: any SequencingJournal, after newestSeq: Int, historyCapacity: Int = EventBus.defaultHistoryCapacity,
        logger: Logger = Logger(label: "tradewire.bus"), clock: @escaping @Sendable () -> Date = { Date() },
        dispatchScope: @escaping @Sendable (() -> Void) -> Void = { $0() },
        fencing: @escaping @Sendable (_ type: String, _ metadata: JSONObject) -> Int? = { _, _ in nil }
    ) -> EventBus {
        EventBus(
            historyCapacity: historyCapacity, logger: logger, clock: clock,
            storage: .sequencing(journal, dispatchScope), firstSeq: newestSeq + 1, fencing: fencing)
    }

    private enum Storage {
        case ephemeral
        case journal(any EventJournal, @Sendable (() -> Void) -> Void)
        case sequencing(any SequencingJournal, @Sendable (() -> Void) -> Void)
    }

    private init(
        historyCapacity: Int, logger: Logger, clock: @escaping @Sendable () -> Date, storage: Storage, firstSeq: Int,
        fencing: @escaping @Sendable (String, JSONObject) -> Int? = { _, _ in nil },
        callerCommits: @escaping @Sendable (EventBus) -> Bool = { _ in false }
    ) {
        let capacity = max(1, historyCapacity)
        var initial = State(historyCapacity: capacity)
        initial.nextSeq = firstSeq
        initial.dispatchedSeq = firstSeq - 1
        initial.history.reserveCapacity(min(capacity, 4096))  // grows on demand up to the capacity
        let state = Mutex(initial)
        self.state = state
        self.logger = logger
        self.asyncFailures = AsyncHandlerFailures(logger: logger)
        self.clock = clock
        self.fencing = fencing
        self.callerCommits = callerCommits
        let box = BusBox()
        switch storage {
        case .ephemeral:
            self.writer = nil
            self.sequenced = false
            self.deliveryScope = { $0() }
        case .journal(let journal, let scope):
            self.writer = JournalWriter(
                sink: .journal(journal), firstSeq: firstSeq, logger: logger, dispatchScope: scope
            ) { batch in
                box.bus?.dispatch(batch)
            }
            self.sequenced = false
            self.deliveryScope = scope
        case .sequencing(let journal, let scope):
            let sink = JournalWriter.Sink.sequencing(
                journal,
                register: { key, batch in box.bus?.register(key, batch) },
                abandon: { key, reason in box.bus?.abandon(key, reason: reason) })
            self.writer = JournalWriter(sink: sink, logger: logger, dispatchScope: scope) { _ in }
            self.sequenced = true
            self.deliveryScope = scope
        }
        box.bus = self
    }

    /// True while the journal's writer thread sleeps for want of events (for tests).
    var journalWriterSleeps: Bool { writer?.sleeps ?? false }

    /// Commits and delivers every event still waiting for the journal, then stops its
    /// writer (nothing when the bus is ephemeral). Publishing afterwards records nothing.
    public func close() {
        writer?.close()
    }

    // MARK: subscriptions

    /// Registers a subscriber. When `owner` already holds `pattern`, returns that subscription
    /// unchanged (no replay). Otherwise, atomically with respect to publishes: calls `prelude`
    /// with the new id and the replay gap (if the requested replay reaches further back than
    /// history), delivers the replay to the handler, then goes live: no gap, no duplicate.
    ///
    /// `id`, when given, is one ``reserveSubscriptionID()`` returned (a server that
    /// acknowledges a subscription before it goes live).
    @discardableResult
    public func subscribe(
        _ pattern: EventPattern,
        owner: SubscriberOwner,
        handler: EventHandler,
        replay: ReplayRequest? = nil,
        id reserved: SubscriptionID? = nil,
        prelude: (SubscriptionID, ReplayGap?) -> Void = { _, _ in }
    ) -> SubscribeOutcome {
        var replayed: [Event] = []
        let outcome: SubscribeOutcome = state.withLock { state in
            if let existing = state.byOwnerAndPattern[owner]?[pattern] {
                return SubscribeOutcome(id: existing, created: false)
            }
            let id: SubscriptionID
            if let reserved {
                id = reserved
            } else {
                id = SubscriptionID(rawValue: state.nextSubscriptionID)
                state.nextSubscriptionID += 1
            }
            let subscriber = Subscriber(id: id, pattern: pattern, owner: owner, handler: handler)
            var gap: ReplayGap?
            if let replay {
                let oldest = state.history.first?.event.seq ?? state.dispatchedSeq + 1
                if replay.sinceSeq + 1 < oldest {
                    gap = ReplayGap(firstSeq: replay.sinceSeq + 1, lastSeq: oldest - 1)
                }
                for record in state.history
                where record.event.seq > replay.sinceSeq && pattern.matches(record.event.type) {
                    replayed.append(record.event)
                }
            }
            prelude(id, gap)
            if case .sync(let deliver) = handler {
                for event in replayed {
                    do { try deliver(event) } catch { state.handlerErrors += 1 }
                    state.delivered += 1
                }
                replayed.removeAll()
            }
            state.subscribers[id] = subscriber
            state.ordered.append(subscriber)
            state.byOwnerAndPattern[owner, default: [:]][pattern] = id
            if owner.isClient {
                if state.clientPatternCounts.count >= Self.maximumRememberedPatterns {
                    state.clientPatternCounts = state.clientPatternCounts.filter { $0.value > 0 }
                }
                state.clientPatternCounts[pattern.text, default: 0] += 1
            } else {
                state.internalPatternCounts[pattern.text, default: 0] += 1
            }
            state.subscriptionsChanged()
            return SubscribeOutcome(id: id, created: true)
        }
        if case .async(let handle) = handler, !replayed.isEmpty {
            // Async replay is best effort and ordered; live events may interleave after it.
            let logger = self.logger
            Task {
                for event in replayed {
                    do { try await handle(event) } catch {
                        logger.warning(
                            "bus.handler.failed", metadata: ["event.type": "\(event.type)", "error": "\(error)"])
                    }
                }
            }
        }
        logger.debug(
            "bus.subscribed",
            metadata: ["subscription": "\(outcome.id)", "pattern": "\(pattern)", "created": "\(outcome.created)"])
        return outcome
    }

    /// A fresh subscription id for a later ``subscribe(_:owner:handler:replay:id:prelude:)``.
    public func reserveSubscriptionID() -> SubscriptionID {
        state.withLock { state in
            defer { state.nextSubscriptionID += 1 }
            return SubscriptionID(rawValue: state.nextSubscriptionID)
        }
    }

    /// The subscription `owner` holds for exactly `pattern`, if any.
    public func subscription(owner: SubscriberOwner, pattern: EventPattern) -> SubscriptionID? {
        state.withLock { $0.byOwnerAndPattern[owner]?[pattern] }
    }

    /// Removes one subscription; `owner`, when given, must match (another connection's id removes nothing).
    @discardableResult
    public func unsubscribe(_ id: SubscriptionID, owner: SubscriberOwner? = nil) -> Bool {
        state.withLock { state in
            guard let subscriber = state.subscribers[id], owner == nil || subscriber.owner == owner else {
                return false
            }
            Self.remove([subscriber], from: &state)
            return true
        }
    }

    /// Removes the owner's subscriptions whose pattern text equals `pattern` exactly.
    @discardableResult
    public func unsubscribe(pattern: String, owner: SubscriberOwner) -> Int {
        state.withLock { state in
            guard let byPattern = state.byOwnerAndPattern[owner] else { return 0 }
            let doomed = byPattern.filter { $0.key.text == pattern }.compactMap { state.subscribers[$0.value] }
            Self.remove(doomed, from: &state)
            return doomed.count
        }
    }

    /// Removes every subscription of an owner (a closed connection). Returns how many.
    @discardableResult
    public func unsubscribeAll(owner: SubscriberOwner) -> Int {
        state.withLock { state in
            guard let byPattern = state.byOwnerAndPattern[owner] else { return 0 }
            let doomed = byPattern.values.compactMap { state.subscribers[$0] }
            Self.remove(doomed, from: &state)
            return doomed.count
        }
    }

    private static func remove(_ doomed: [Subscriber], from state: inout State) {
        guard !doomed.isEmpty else { return }
        for subscriber in doomed {
            state.subscribers[subscriber.id] = nil
            state.byOwnerAndPattern[subscriber.owner]?[subscriber.pattern] = nil
            if state.byOwnerAndPattern[subscriber.owner]?.isEmpty == true {
                state.byOwnerAndPattern[subscriber.owner] = nil
            }
            // The pattern key stays with a zero count, as in the reference's get_stats.
            if subscriber.owner.isClient {
                state.clientPatternCounts[subscriber.pattern.text, default: 1] -= 1
            } else {
                state.internalPatternCounts[subscriber.pattern.text, default: 1] -= 1
            }
        }
        let ids = Set(doomed.map(\.id))
        state.ordered.removeAll { ids.contains($0.id) }
        state.subscriptionsChanged()
    }

    /// How many subscriptions an owner holds.
    public func subscriptionCount(owner: SubscriberOwner) -> Int {
        state.withLock { $0.byOwnerAndPattern[owner]?.count ?? 0 }
    }

    /// True when at least one client subscription matches `type` (lets a publisher encode a
    /// large payload before publishing, outside the delivery lock).
    public func hasClientSubscriber(for type: String) -> Bool {
        state.withLock { state in state.matching(type).contains { $0.owner.isClient } }
    }

    // MARK: publishing

    /// Publishes and awaits every matching in-process handler. Runs on the caller's
    /// executor (no hop of its own: a publish from an actor stays on it until a handler runs).
    @discardableResult
    nonisolated(nonsending) public func publish(
        _ type: String,
        payload: any EventPayload = JSONValue.null,
        metadata: JSONObject = JSONObject()
    ) async -> PublishedEvent {
        let published = publishRecording(type, payload: payload, metadata: metadata)
        if published.hasPendingHandlers { await published.handlersFinished() }
        return published
    }

    /// The synchronous half of a publish: assigns the seq, records history, updates counters
    /// and runs synchronous handlers (in seq order). The returned value's
    /// ``PublishedEvent/handlersFinished()`` runs the async handlers; callers that need the
    /// reference semantics must await it.
    ///
    /// `type` must already be a valid event type (see ``EventName/validateType(_:)``).
    public func publishRecording(
        _ type: String,
        payload: any EventPayload,
        metadata: JSONObject = JSONObject()
    ) -> PublishedEvent {
        // Whole microseconds: the precision of the wire's times and of the journal, so a
        // recorded event reads back exactly as it was delivered.
        let stamp = RFC3339.wholeMicroseconds(clock())
        let timestamp = RFC3339.date(seconds: stamp.seconds, micros: stamp.micros)
        if let writer, !sequenced {
            // Capture before dispatch: the seq is assigned now, in order, under the writer's
            // lock (not the bus's, which the writer holds while it delivers a batch);
            // matching, delivery and history happen once the event's batch is in the journal.
            let (entry, queued) = writer.enqueueNext(stamp: stamp, callerCommits: callerCommits(self)) {
                seq, timestampText in
                JournalWriter.Entry(
                    event: Event(
                        seq: seq, type: type, timestamp: timestamp, timestampText: timestampText, payload: payload,
                        metadata: metadata),
                    ticket: DispatchTicket())
            }
            guard queued else {
                logger.error("bus.publish.after_close", metadata: ["event.type": "\(type)"])
                return PublishedEvent(
                    event: entry.event, dispatch: .done(.unmatched(failure: nil)), failures: asyncFailures)
            }
            return PublishedEvent(event: entry.event, dispatch: .pending(entry.ticket), failures: asyncFailures)
        }
        if let writer {
            // A sequencing journal: publishes are queued in order under the bus's lock; the
            // journal gives the seq when the batch commits (0 until then).
            let fence = fencing(type, metadata)
            return state.withLock { state in
                let timestampText = state.timestamps.text(seconds: stamp.seconds, micros: stamp.micros)
                let event = Event(
                    seq: 0, type: type, timestamp: timestamp, timestampText: timestampText, payload: payload,
                    metadata: metadata)
                let ticket = DispatchTicket()
                guard writer.enqueue(JournalWriter.Entry(event: event, ticket: ticket, fence: fence)) else {
                    logger.error("bus.publish.after_close", metadata: ["event.type": "\(type)"])
                    // The journal never gave this event a seq: its publisher is told.
                    let outcome = DispatchOutcome.unmatched(failure: "the daemon is stopping")
                    return PublishedEvent(event: event, dispatch: .done(outcome), failures: asyncFailures)
                }
                return PublishedEvent(event: event, dispatch: .pending(ticket), failures: asyncFailures)
            }
        }
        // A type not in the match cache is matched against every subscription outside the
        // lock (other publishers keep going), then used if no subscription changed meanwhile.
        var computed: (generation: Int, found: [Subscriber])?
        for attempt in 0..<3 {
            var snapshot: (generation: Int, all: [Subscriber])?
            let published: PublishedEvent? = state.withLock { state in
                let matched: [Subscriber]
                if let cached = state.publishing(type) {
                    matched = cached
                } else if let computed, computed.generation == state.generation {
                    matched = computed.found
                    state.cache(type, matched)
                    state.countPublish(type)
                } else if attempt == 2 {
                    matched = state.matchingPublish(type)
                } else {
                    snapshot = (state.generation, state.ordered)
                    return nil
                }
                return record(type, timestamp, stamp, payload, metadata, matched, &state)
            }
            if let published { return published }
            if let snapshot {
                computed = (snapshot.generation, snapshot.all.filter { $0.pattern.matches(type) })
            }
        }
        preconditionFailure("the third attempt matches under the lock")
    }

    /// Assigns the seq, runs synchronous handlers, records history and counts (under the lock).
    private func record(
        _ type: String, _ timestamp: Date, _ stamp: (seconds: Int64, micros: Int64), _ payload: any EventPayload,
        _ metadata: JSONObject, _ matched: [Subscriber], _ state: inout State
    ) -> PublishedEvent {
        let event = Event(
            seq: state.nextSeq, type: type, timestamp: timestamp,
            timestampText: state.timestamps.text(seconds: stamp.seconds, micros: stamp.micros), payload: payload,
            metadata: metadata)
        state.nextSeq += 1
        let outcome = deliver(event, to: matched, &state)
        return PublishedEvent(event: event, dispatch: .done(outcome), failures: asyncFailures)
    }

    /// Delivers a committed event (the journal's writer thread calls this, in seq order).
    fileprivate func dispatch(_ batch: [JournalWriter.Entry]) {
        let outcomes: [DispatchOutcome] = state.withLock { state in
            batch.map { entry in deliver(entry.event, to: state.matchingPublish(entry.event.type), &state) }
        }
        for (entry, outcome) in zip(batch, outcomes) { entry.ticket.complete(outcome) }
    }

    /// Delivers events a sequencing journal committed, in seq order (its tail calls this).
    /// A seq at or below the newest delivered is a duplicate and is ignored; one beyond the
    /// next is a gap: nothing from there on is delivered (the tail must hand the missing
    /// seq over first). Returns the newest seq delivered.
    @discardableResult
    public func deliverSequenced(_ deliveries: [SequencedDelivery]) -> Int {
        var completions: [(DispatchTicket, DispatchOutcome)] = []
        var newest = 0
        deliveryScope {
            newest = state.withLock { state in
                for delivery in deliveries {
                    let seq = delivery.event.seq
                    if seq <= state.dispatchedSeq { continue }
                    guard seq == state.dispatchedSeq + 1 else {
                        logger.error(
                            "bus.sequenced.gap",
                            metadata: ["expected.seq": "\(state.dispatchedSeq + 1)", "event.seq": "\(seq)"])
                        break
                    }
                    var event = delivery.event
                    var ticket: DispatchTicket?
                    if let batch = state.pendingBatches[delivery.batchKey], delivery.index < batch.count {
                        let published = batch[delivery.index]
                        event = Event(
                            seq: seq, type: published.event.type, timestamp: published.event.timestamp,
                            timestampText: published.event.timestampText, payload: published.event.payload,
                            metadata: published.event.metadata)
                        ticket = published.ticket
                        if delivery.index == batch.count - 1 { state.pendingBatches[delivery.batchKey] = nil }
                    }
                    state.nextSeq = seq + 1
                    var outcome = deliver(event, to: state.matchingPublish(event.type), &state, node: delivery.node)
                    outcome.event = event
                    if let ticket {
                        completions.append((ticket, outcome))
                    }
                }
                return state.dispatchedSeq
            }
            for (ticket, outcome) in completions { ticket.complete(outcome) }
        }
        return newest
    }

    /// The writer's batch, registered under its key before the append.
    fileprivate func register(_ key: String, _ batch: [JournalWriter.Entry]) {
        state.withLock { $0.pendingBatches[key] = batch }
    }

    /// The writer gave a batch up: its publishers learn the journal is unavailable. (Should
    /// the append have committed after all, the tail delivers those events like any other's.)
    fileprivate func abandon(_ key: String, reason: String) {
        let batch = state.withLock { $0.pendingBatches.removeValue(forKey: key) } ?? []
        for entry in batch {
            entry.ticket.complete(.unmatched(failure: reason))
        }
    }

    /// Runs synchronous handlers, records history and counts (under the lock; the caller
    /// counted the publish by type when it looked the match list up).
    private func deliver(
        _ event: Event, to matched: [Subscriber], _ state: inout State, node: String? = nil
    ) -> DispatchOutcome {
        let type = event.type
        state.dispatchedSeq = event.seq
        var clients = 0
        var asyncHandlers = 0
        for subscriber in matched {
            if subscriber.owner.isClient { clients += 1 }
            switch subscriber.handler {
            case .sync(let deliver):
                do { try deliver(event) } catch {
                    state.handlerErrors += 1
                    logger.warning(
                        "bus.handler.failed",
                        metadata: ["event.type": "\(type)", "event.seq": "\(event.seq)", "error": "\(error)"])
                }
            case .async:
                asyncHandlers += 1
            }
        }
        state.delivered += matched.count
        if state.history.count == state.historyCapacity { state.history.removeFirst() }
        state.history.append(HistoryRecord(event: event, subscriberCount: clients, node: node))
        state.published += 1
        return DispatchOutcome(clientSubscribers: clients, matched: matched, asyncHandlers: asyncHandlers)
    }

    /// Matched subscribers held by the match cache (Σ matches + 1), for tests of its bound.
    var cachedMatchCount: Int { state.withLock { $0.cachedMatches } }

    var handlerLogger: Logger { logger }

    // MARK: queries

    /// History, oldest first: filtered by `pattern` and `sinceSeq`, then the last `limit`
    /// (nil or 0: everything that matched).
    public func history(matching pattern: EventPattern? = nil, sinceSeq: Int? = nil, limit: Int? = nil) -> HistoryPage {
        state.withLock { state in
            var records: [HistoryRecord] = []
            for record in state.history {
                if let sinceSeq, record.event.seq <= sinceSeq { continue }
                if let pattern, !pattern.matches(record.event.type) { continue }
                records.append(record)
            }
            if let limit, limit > 0, records.count > limit {
                records.removeFirst(records.count - limit)
            }
            return HistoryPage(
                records: records,
                oldestSeq: state.history.first?.event.seq,
                newestSeq: state.history.last?.event.seq,
                capacity: state.historyCapacity)
        }
    }

    /// The newest seq issued (0 before the first publish).
    public var lastSeq: Int {
        if let writer, !sequenced { return writer.lastIssuedSeq }
        return state.withLock { $0.nextSeq - 1 }
    }

    /// The newest seq delivered to subscribers, and the oldest seq still in the history ring
    /// (nil when it is empty): where a replay from the journal must hand over to the bus.
    public var replayBoundary: (dispatched: Int, oldestInHistory: Int?) {
        state.withLock { ($0.dispatchedSeq, $0.history.first?.event.seq) }
    }

    /// Empties the history ring (counters and seq are kept).
    public func clearHistory() {
        state.withLock { $0.history.removeAll(keepingCapacity: true) }
    }

    public func statistics() -> BusStatistics {
        // A local journal's writer gives the seqs; otherwise the bus's state holds the next.
        let issued = sequenced ? nil : writer?.lastIssuedSeq
        return state.withLock { state in
            BusStatistics(
                clientSubscriptionsByPattern: state.clientPatternCounts,
                internalHandlersByPattern: state.internalPatternCounts.filter { $0.value > 0 },
                eventsPublished: state.published,
                eventsDelivered: state.delivered,
                handlerErrors: state.handlerErrors + asyncFailures.count,
                publishedByType: state.publishedByType,
                historySize: state.history.count,
                historyCapacity: state.historyCapacity,
                lastSeq: issued ?? state.nextSeq - 1)
        }
    }
}

/// A published event: recorded (ephemeral bus) or waiting for its journal batch, with its
/// async handlers still to run.
public struct PublishedEvent: Sendable {
    enum Dispatch: Sendable {
        case done(DispatchOutcome)
        case pending(DispatchTicket)
    }

    /// The event as published, before a sequencing journal gave it its seq.
    private let published: Event
    let dispatch: Dispatch
    fileprivate let failures: AsyncHandlerFailures

    fileprivate init(event: Event, dispatch: Dispatch, failures: AsyncHandlerFailures) {
        self.published = event
        self.dispatch = dispatch
        self.failures = failures
    }

    /// The event: with its seq once dispatched (a sequencing journal's seq is 0 until then).
    public var event: Event { outcome?.event ?? published }

    /// Set when the event was not stored: a sequencing journal could not be reached (the
    /// publisher is answered `cluster_unavailable`).
    public var failure: String? { outcome?.failure }

    private var outcome: DispatchOutcome? {
        switch dispatch {
        case .done(let outcome): outcome
        case .pending(let ticket): ticket.outcome
        }
    }

    /// True once the event was delivered (always on an ephemeral bus; after its batch
    /// committed on a journaled one).
    public var isDispatched: Bool { outcome != nil }

    /// Client subscriptions that matched (0 until dispatched).
    public var clientSubscribers: Int { outcome?.clientSubscribers ?? 0 }

    /// True when async in-process handlers matched and must be awaited (or the event is not
    /// dispatched yet, so they may).
    public var hasPendingHandlers: Bool { outcome.map { $0.asyncHandlers > 0 } ?? true }

    /// Waits until the event was delivered (its batch committed).
    public func dispatched() async {
        if case .pending(let ticket) = dispatch { _ = await ticket.dispatched() }
    }

    /// Calls `body` once the event was delivered, with whether async handlers matched: at
    /// once when it already was, else on the journal's writer thread (keep it short).
    public func whenDispatched(_ body: @escaping @Sendable (_ hasPendingHandlers: Bool) -> Void) {
        switch dispatch {
        case .done(let outcome): body(outcome.asyncHandlers > 0)
        case .pending(let ticket): ticket.whenDispatched { body($0.asyncHandlers > 0) }
        }
    }

    /// Runs the matched async handlers concurrently and returns when all have finished.
    /// Errors are counted and logged, never thrown.
    public func handlersFinished() async {
        let outcome: DispatchOutcome
        switch dispatch {
        case .done(let done): outcome = done
        case .pending(let ticket): outcome = await ticket.dispatched()
        }
        guard outcome.asyncHandlers > 0 else { return }
        let event = self.event
        var handlers = outcome.matched.lazy.compactMap(\.asyncHandler).makeIterator()
        guard outcome.asyncHandlers > 1 else {
            if let handle = handlers.next() { await run(handle, event) }
            return
        }
        // Each handler but the last is a child task started immediately: it runs on this
        // thread until its first suspension, so a handler that never suspends costs no
        // scheduling, while one that waits lets the others run — concurrent, as the
        // reference's gather was. The last runs in this task, beside the ones still waiting.
        // Failures are counted as they happen, not when the slowest handler ends.
        await withDiscardingTaskGroup { group in
            var next = handlers.next()
            while let handle = next {
                next = handlers.next()
                guard next != nil else {
                    await run(handle, event)
                    break
                }
                group.addImmediateTask { await self.run(handle, event) }
            }
        }
    }

    private func run(_ handle: @Sendable (Event) async throws -> Void, _ event: Event) async {
        do { try await handle(event) } catch { fail(error) }
    }

    private func fail(_ error: any Error) {
        failures.record(error, event: event)
    }
}

/// Failures of async in-process handlers: logged and counted (`get_stats`' handler errors,
/// with the synchronous ones the bus counts under its lock).
private final class AsyncHandlerFailures: Sendable {
    private let logger: Logger
    private let failed = Atomic<Int>(0)

    init(logger: Logger) { self.logger = logger }

    var count: Int { failed.load(ordering: .relaxed) }

    func record(_ error: any Error, event: Event) {
        logger.warning(
            "bus.handler.failed",
            metadata: ["event.type": "\(event.type)", "event.seq": "\(event.seq)", "error": "\(error)"])
        failed.add(1, ordering: .relaxed)
    }
}

/// The bus, for its journal writer's dispatch closure without a retain cycle.
private final class BusBox: @unchecked Sendable {
    // Set once, before the writer can dispatch anything.
    weak var bus: EventBus?
}
