import Logging
import PostgresNIO
import Synchronization
import TradewireBus

/// Follows the shared journal in seq order and hands each page to `deliver`: every seq
/// once, none skipped.
///
/// `LISTEN tw_events` is only a wake-up (payloads are capped and the queue can fill); the
/// rows are read from the table after it, and a slow poll reads them anyway when the
/// listening connection is gone. A page that does not start right after the last
/// delivered seq is a gap: logged as an error, and delivery waits (never skips).
public final class ClusterTail: Sendable {
    /// Where delivery stands: the newest seq handed to `deliver`.
    public var deliveredSeq: Int { state.withLock { $0.delivered } }
    /// Gaps seen at the head of a read (a bug or pruned history); each was waited on.
    public var gapsSeen: Int { state.withLock { $0.gaps } }
    /// Wake-ups received through LISTEN.
    public var notificationsReceived: Int { state.withLock { $0.notifications } }

    private struct State {
        var delivered: Int
        var gaps = 0
        var notifications = 0
        /// True while reads fail (an outage is logged once).
        var failing = false
        var wake: AsyncStream<Void>.Continuation?
    }

    private let journal: ClusterJournal
    private let pollInterval: Duration
    private let pageSize: Int
    private let logger: Logger
    private let state: Mutex<State>

    /// Starts after `afterSeq` (0: from the beginning of what the journal keeps).
    public init(
        journal: ClusterJournal, after afterSeq: Int, pollInterval: Duration = .milliseconds(500),
        pageSize: Int = 1000, logger: Logger
    ) {
        self.journal = journal
        self.pollInterval = pollInterval
        self.pageSize = pageSize
        self.logger = logger
        self.state = Mutex(State(delivered: afterSeq))
    }

    /// Reads and delivers until the task is cancelled. `deliver` gets consecutive records.
    public func run(deliver: @escaping @Sendable ([ClusterRecord]) async -> Void) async {
        let (wakes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.wake = continuation }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask {
                // The poll: a wake-up at least every `pollInterval`, whatever LISTEN does.
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.pollInterval)
                    continuation.yield()
                }
            }
            group.addTask {
                var iterator = wakes.makeAsyncIterator()
                continuation.yield()
                while await iterator.next() != nil, !Task.isCancelled {
                    await self.catchUp(deliver)
                }
            }
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
    }

    /// Wakes the reader now (a local append just committed).
    public func wake() {
        _ = state.withLock { $0.wake }?.yield()
    }

    private func catchUp(_ deliver: @Sendable ([ClusterRecord]) async -> Void) async {
        while !Task.isCancelled {
            let after = deliveredSeq
            let page: [ClusterRecord]
            do { page = try await journal.read(after: after, limit: pageSize) } catch {
                // Logged once per outage, not at every poll.
                if !setFailing(true) {
                    logger.warning(
                        "cluster.tail.read_failed", metadata: ["error": "\(error)", "tail.after_seq": "\(after)"])
                }
                return
            }
            if setFailing(false) {
                logger.notice("cluster.tail.reading_again", metadata: ["tail.after_seq": "\(after)"])
            }
            guard let first = page.first else { return }
            // Consecutive from the cursor, or nothing: a hole is never skipped.
            var run = 0
            var expected = after + 1
            for record in page {
                guard record.record.seq == expected else { break }
                run += 1
                expected += 1
            }
            guard run > 0 else {
                state.withLock { $0.gaps += 1 }
                logger.error(
                    "cluster.tail.gap",
                    metadata: ["tail.expected_seq": "\(after + 1)", "tail.found_seq": "\(first.record.seq)"])
                return
            }
            let records = Array(page.prefix(run))
            await deliver(records)
            state.withLock { $0.delivered = records[records.count - 1].record.seq }
            if run < page.count || page.count < pageSize { return }
        }
    }

    /// Sets whether reads fail; returns what it was.
    private func setFailing(_ failing: Bool) -> Bool {
        state.withLock { state in
            defer { state.failing = failing }
            return state.failing
        }
    }

    /// Keeps a LISTEN connection open, reconnecting after a pause when it fails.
    private func listen() async {
        let database = journal.database
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    try await connection.listen(on: "tw_events") { notifications in
                        self.wake()
                        for try await _ in notifications {
                            self.state.withLock { $0.notifications += 1 }
                            self.wake()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.info("cluster.tail.listen_lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
