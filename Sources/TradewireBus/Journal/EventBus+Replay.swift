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
        var replay = sinceSeq.map { ReplayRequest(sinceSeq: $0) }
        var recorded: [Event] = []
        if let sinceSeq, let journal {
            // Older than the history ring: first from the journal, then the ring replays and
            // goes live from where the journal's part ended.
            let (dispatched, oldest) = replayBoundary
            let upper = min(dispatched, (oldest ?? dispatched + 1) - 1)
            if sinceSeq < upper {
                do {
                    let records = try journal.read(
                        JournalQuery(afterSeq: sinceSeq, pattern: pattern.text, limit: Self.maximumJournalReplay)
                    ).filter { $0.seq <= upper }
                    recorded = records.map(Event.init(record:))
                    let limited = records.count == Self.maximumJournalReplay
                    replay = ReplayRequest(sinceSeq: limited ? records.last?.seq ?? sinceSeq : upper)
                } catch {
                    // The ring reports what it cannot replay as a gap.
                    handlerLogger.error("bus.subscribe.journal_read_failed", metadata: ["error": "\(error)"])
                }
            }
        }
        return subscribe(
            pattern, owner: owner, handler: .sync(deliver), replay: replay, id: id,
            prelude: { id, gap in
                for event in recorded { try? deliver(event) }
                if let gap { onGap(id, gap) }
            })
    }
}
