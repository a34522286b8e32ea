import Logging

/// Subscribing with a replay that reaches into the journal: the socket's `subscribe
/// since_seq` and the HTTP event stream share it.
extension EventBus {
    /// Most events one replay reads from the journal; beyond them the subscriber is told of
    /// a gap (to fetch with `get_event_history`, or by resubscribing from the last seq seen).
    public static let maximumJournalReplay = 10_000

    /// Subscribes `deliver` (a synchronous handler: quick, never blocking, never calling back
    /// into the bus) and replays every matching event after `sinceSeq`: first those only the
    /// journal still holds, then the history ring, then live ones — in seq order, no gap, no
    /// duplicate. `onGap` is told (before any later event) of the seqs neither could replay:
    /// events older than the journal keeps, or beyond ``maximumJournalReplay``.
    ///
    /// Without `sinceSeq` the subscription only goes live. Without a journal the ring alone
    /// replays. `id` is one ``reserveSubscriptionID()`` returned, when the caller announced it
    /// before the subscription went live.
    @discardableResult
    public func subscribe(
        _ pattern: EventPattern, owner: SubscriberOwner, replayingAfter sinceSeq: Int?,
        from journal: (any EventJournal)?,
        id: SubscriptionID? = nil, deliver: @escaping @Sendable (Event) throws -> Void,
        onGap: @escaping (SubscriptionID, ReplayGap) -> Void
    ) -> SubscribeOutcome {
        var read: JournalReplayRead?
        if let plan = journalReplayPlan(pattern, after: sinceSeq), let journal {
            do {
                read = JournalReplayRead(plan: plan, records: try journal.read(plan.query))
            } catch {
                // The ring reports what it cannot replay as a gap.
                handlerLogger.error("bus.subscribe.journal_read_failed", metadata: ["error": "\(error)"])
            }
        }
        return subscribe(
            pattern, owner: owner, replayingAfter: sinceSeq, journalRead: read, id: id, deliver: deliver, onGap: onGap)
    }

    /// What a replay after `sinceSeq` must read from a journal first (nil when the history
    /// ring alone has every event it needs): the events older than the ring holds.
    public func journalReplayPlan(_ pattern: EventPattern, after sinceSeq: Int?) -> JournalReplayPlan? {
        guard let sinceSeq else { return nil }
        let (dispatched, oldest) = replayBoundary
        let upper = min(dispatched, (oldest ?? dispatched + 1) - 1)
        guard sinceSeq < upper else { return nil }
        return JournalReplayPlan(
            query: JournalQuery(afterSeq: sinceSeq, pattern: pattern.text, limit: Self.maximumJournalReplay),
            upper: upper)
    }

    /// ``subscribe(_:owner:replayingAfter:from:id:deliver:onGap:)`` once the journal's part
    /// of the replay was read (by the caller, maybe asynchronously: what the ring took
    /// meanwhile it still replays). `read` nil: nothing was read (the ring reports a gap).
    @discardableResult
    public func subscribe(
        _ pattern: EventPattern, owner: SubscriberOwner, replayingAfter sinceSeq: Int?,
        journalRead read: JournalReplayRead?,
        id: SubscriptionID? = nil, deliver: @escaping @Sendable (Event) throws -> Void,
        onGap: @escaping (SubscriptionID, ReplayGap) -> Void
    ) -> SubscribeOutcome {
        var replay = sinceSeq.map { ReplayRequest(sinceSeq: $0) }
        var recorded: [Event] = []
        if let read, let sinceSeq {
            let records = read.records.filter { $0.seq <= read.plan.upper }
            recorded = records.map(Event.init(record:))
            let limited = records.count == Self.maximumJournalReplay
            replay = ReplayRequest(sinceSeq: limited ? records.last?.seq ?? sinceSeq : read.plan.upper)
        }
        return subscribe(
            pattern, owner: owner, handler: .sync(deliver), replay: replay, id: id,
            prelude: { id, gap in
                for event in recorded { try? deliver(event) }
                if let gap { onGap(id, gap) }
            })
    }
}

/// The journal's part of a replay: what to read, and the seq it ends at (the ring replays
/// what follows).
public struct JournalReplayPlan: Sendable {
    public let query: JournalQuery
    public let upper: Int
}

/// A ``JournalReplayPlan`` with what the journal returned for it.
public struct JournalReplayRead: Sendable {
    public let plan: JournalReplayPlan
    public let records: [JournalRecord]

    public init(plan: JournalReplayPlan, records: [JournalRecord]) {
        self.plan = plan
        self.records = records
    }
}
