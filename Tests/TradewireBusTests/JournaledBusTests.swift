import Foundation
import Logging
import Synchronization
import Testing
import TradewireJSON

@testable import TradewireBus

/// An in-memory journal whose appends a test can hold back or make fail.
final class MemoryJournal: EventJournal {
    struct State {
        var records: [JournalRecord] = []
        var appends: [Int] = []
        /// The thread each append ran on (failed ones too).
        var appendThreads: [pthread_t] = []
        var failuresLeft = 0
        var documents: [String: [UInt8]] = [:]
    }
    let state = Mutex(State())
    let gate = NSCondition()
    private let heldBox = Mutex(false)
    /// Appends waiting at the gate.
    let waiting = Atomic<Int>(0)
    let journalID = "memory"

    init(newest: Int = 0, failures: Int = 0) {
        state.withLock { s in
            if newest > 0 {
                s.records.append(
                    JournalRecord(
                        seq: newest, type: "old", timestamp: Date(), data: Array("null".utf8),
                        metadata: Array("{}".utf8), dataType: "null", subscriberCount: 0))
            }
            s.failuresLeft = failures
        }
    }

    var records: [JournalRecord] { state.withLock { $0.records } }
    var appendSizes: [Int] { state.withLock { $0.appends } }
    var appendThreads: [pthread_t] { state.withLock { $0.appendThreads } }

    /// While held, appends wait.
    func hold() { heldBox.withLock { $0 = true } }
    func release() {
        heldBox.withLock { $0 = false }
        gate.lock()
        gate.broadcast()
        gate.unlock()
    }

    func newestSeq() throws(JournalError) -> Int { state.withLock { $0.records.last?.seq ?? 0 } }

    func append(_ records: [JournalRecord]) throws(JournalError) {
        gate.lock()
        waiting.add(1, ordering: .relaxed)
        while heldBox.withLock({ $0 }) { gate.wait() }
        waiting.subtract(1, ordering: .relaxed)
        gate.unlock()
        let thread = pthread_self()
        let failure: JournalError? = state.withLock { s in
            s.appendThreads.append(thread)
            if s.failuresLeft > 0 {
                s.failuresLeft -= 1
                return JournalError(.io, "disk on fire")
            }
            let next = (s.records.last?.seq ?? 0) + 1
            for (offset, record) in records.enumerated() where record.seq != next + offset {
                return JournalError(.seqOutOfOrder, "expected \(next + offset), got \(record.seq)")
            }
            s.records.append(contentsOf: records)
            s.appends.append(records.count)
            return nil
        }
        if let failure { throw failure }
    }

    func read(_ query: JournalQuery) throws(JournalError) -> [JournalRecord] {
        let after = records.filter { $0.seq > (query.afterSeq ?? 0) }
        guard let limit = query.limit else { return after }
        return query.newest ? Array(after.suffix(limit)) : Array(after.prefix(limit))
    }
    func pruneBoundary(keepingAtMost maxEvents: Int, olderThan cutoff: Date?) throws(JournalError) -> Int? { nil }
    func prune(below boundary: Int) throws(JournalError) -> Int { 0 }
    func restore(_ records: [JournalRecord]) throws(JournalError) {
        state.withLock { $0.records.append(contentsOf: records) }
    }
    func records(ofIteration iterationID: String, types: [String]) throws(JournalError) -> [JournalRecord] { [] }
    func loadState(_ key: String) throws(JournalError) -> [UInt8]? { state.withLock { $0.documents[key] } }
    func saveState(_ key: String, _ value: [UInt8]) throws(JournalError) {
        state.withLock { $0.documents[key] = value }
    }
    func summary() throws(JournalError) -> JournalSummary {
        JournalSummary(
            location: "memory", journalID: journalID, events: records.count, oldestSeq: records.first?.seq,
            newestSeq: records.last?.seq, bytes: 0, sync: .normal)
    }
}

@Suite struct JournaledBusTests {
    @Test func nothingIsDeliveredBeforeItIsInTheJournal() async throws {
        let journal = MemoryJournal()
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        // Each delivery notes how many records the journal held at that moment.
        let seen = Mutex<[(seq: Int, journaled: Int)]>([])
        bus.subscribe(
            try EventPattern("*"), owner: .client(connection: 1),
            handler: .sync { event in
                let count = journal.records.count
                seen.withLock { $0.append((event.seq, count)) }
            })
        journal.hold()
        let published = (1...5).map { i in bus.publishRecording("e", payload: JSONValue(i)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(seen.withLock { $0.isEmpty }, "no delivery while the journal holds the batch")
        #expect(published.allSatisfy { !$0.isDispatched })
        #expect(bus.history().records.isEmpty)
        journal.release()
        for event in published { await event.dispatched() }
        let deliveries = seen.withLock { $0 }
        #expect(deliveries.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(deliveries.allSatisfy { $0.journaled >= $0.seq }, "each event was in the journal first")
        #expect(published.allSatisfy { $0.isDispatched && $0.clientSubscribers == 1 })
        #expect(journal.records.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(journal.records.map { String(decoding: $0.data, as: UTF8.self) } == ["1", "2", "3", "4", "5"])
        #expect(journal.records.allSatisfy { String(decoding: $0.metadata, as: UTF8.self) == "{}" })
        #expect(bus.history().records.map(\.event.seq) == [1, 2, 3, 4, 5])
    }

    @Test func seqContinuesAfterTheJournalsNewest() async throws {
        let journal = MemoryJournal(newest: 41)
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        let first = await bus.publish("after.restart", metadata: ["k": "v"])
        #expect(first.event.seq == 42)
        #expect(bus.lastSeq == 42)
        #expect(journal.records.last.map { String(decoding: $0.metadata, as: UTF8.self) } == #"{"k":"v"}"#)
    }

    /// Seqs are given when an event is queued, before its batch commits: `lastSeq` counts
    /// them, and a subscriber that asks for a replay meanwhile is told of no gap, since the
    /// events still waiting for the journal reach it live.
    @Test func eventsWaitingForTheJournalHaveSeqsAndReachANewSubscriberLive() async throws {
        let journal = MemoryJournal(newest: 10)
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        journal.hold()
        let published = (1...5).map { i in bus.publishRecording("held", payload: JSONValue(i)) }
        #expect(published.map(\.event.seq) == [11, 12, 13, 14, 15])
        #expect(bus.lastSeq == 15)
        #expect(bus.statistics().lastSeq == 15)
        #expect(bus.statistics().eventsPublished == 0, "nothing is delivered before the journal has it")
        let gap = Mutex<ReplayGap?>(ReplayGap(firstSeq: -1, lastSeq: -1))
        let seen = Mutex<[Int]>([])
        bus.subscribe(
            try EventPattern("held"), owner: .client(connection: 1),
            handler: .sync { event in seen.withLock { $0.append(event.seq) } },
            replay: ReplayRequest(sinceSeq: 10),
            prelude: { _, reported in gap.withLock { $0 = reported } })
        #expect(gap.withLock { $0 } == nil, "events 11-15 are still to be delivered: no gap")
        journal.release()
        for event in published { await event.dispatched() }
        #expect(seen.withLock { $0 } == [11, 12, 13, 14, 15])
        #expect(bus.statistics().eventsPublished == 5)
        let next = await bus.publish("held")
        #expect(next.event.seq == 16)
        #expect(bus.lastSeq == 16)
    }

    @Test func concurrentPublishersCommitInSeqOrderWithoutGaps() async throws {
        let journal = MemoryJournal()
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        let order = Mutex<[Int]>([])
        bus.subscribe(
            try EventPattern("*"), owner: .client(connection: 1),
            handler: .sync { event in order.withLock { $0.append(event.seq) } })
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for i in 0..<500 { await bus.publish("load", payload: JSONValue(i)) }
                }
            }
        }
        #expect(journal.records.map(\.seq) == Array(1...2000))
        #expect(order.withLock { $0 } == Array(1...2000))
        #expect(journal.appendSizes.allSatisfy { $0 <= JournalWriter.maximumBatch })
    }

    @Test func batchesGrowUnderLoadUpToTheLimit() async throws {
        let journal = MemoryJournal()
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        journal.hold()
        let first = bus.publishRecording("first", payload: JSONValue.null)
        while journal.waiting.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let rest = (0..<1500).map { _ in bus.publishRecording("burst", payload: JSONValue.null) }
        journal.release()
        await first.dispatched()
        for event in rest { await event.dispatched() }
        #expect(journal.appendSizes == [1, 1000, 500])
    }

    @Test func aFailedAppendIsRetriedAndNothingIsSkipped() async throws {
        let journal = MemoryJournal(failures: 2)
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        let a = await bus.publish("a")
        let b = await bus.publish("b")
        #expect(a.event.seq == 1 && b.event.seq == 2)
        #expect(journal.records.map(\.seq) == [1, 2])
    }

    @Test func closeCommitsWhatWasQueuedAndLaterPublishesDoNotHang() async throws {
        let journal = MemoryJournal()
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        let queued = (0..<100).map { _ in bus.publishRecording("q", payload: JSONValue.null) }
        bus.close()
        #expect(journal.records.count == 100)
        #expect(queued.allSatisfy { $0.isDispatched })
        let late = bus.publishRecording("late", payload: JSONValue.null)
        await late.dispatched()
        #expect(journal.records.count == 100, "nothing is recorded after close")
    }

    @Test func asyncHandlersRunAfterDispatch() async throws {
        let journal = MemoryJournal()
        let bus = try EventBus.journaled(journal, logger: quietLogger)
        defer { bus.close() }
        let ran = Mutex(0)
        bus.subscribe(
            try EventPattern("x"), owner: .inProcess("h"),
            handler: .async { _ in
                #expect(journal.records.count == 1)
                ran.withLock { $0 += 1 }
            })
        let published = bus.publishRecording("x", payload: JSONValue.null)
        #expect(published.hasPendingHandlers)
        await published.handlersFinished()
        #expect(ran.withLock { $0 } == 1)
    }

    // A publisher's thread that commits its own batch (an event loop at the end of its read
    // round): `callerCommits` answers true on the test's `LoopThread`.

    @Test func aPublishersThreadThatPromisedCommitsItsBatchItselfAndDeliversItThere() async throws {
        let journal = MemoryJournal()
        let loop = LoopThread()
        let (bus, deliveries) = try loop.bus(on: journal)
        defer { bus.close() }
        try await Self.untilTheWriterSleeps(bus)
        let seen = Mutex<(beforeCommit: [Bool], afterCommit: [Bool], appendsBefore: Int)>(([], [], -1))
        await loop.run {
            let published = (1...5).map { bus.publishRecording("e", payload: JSONValue($0)) }
            Thread.sleep(forTimeInterval: 0.05)  // time enough for a writer thread woken by mistake
            let appendsBefore = journal.appendSizes.count
            let before = published.map(\.isDispatched)
            bus.commitWaitingEvents()
            seen.withLock { $0 = (before, published.map(\.isDispatched), appendsBefore) }
        }
        let (before, after, appendsBefore) = seen.withLock { $0 }
        #expect(appendsBefore == 0, "the writer thread was not woken for the loop's publishes")
        #expect(before == Array(repeating: false, count: 5))
        #expect(after == Array(repeating: true, count: 5), "delivered when the commit returns")
        #expect(journal.appendSizes == [5])
        #expect(journal.appendThreads.map(loop.isThread) == [true])
        #expect(deliveries.onLoop == Array(repeating: true, count: 5))
        #expect(deliveries.seqs == [1, 2, 3, 4, 5])
        #expect(journal.records.map(\.seq) == [1, 2, 3, 4, 5])
        // A publish from elsewhere still wakes the writer thread.
        let other = await bus.publish("elsewhere")
        #expect(other.event.seq == 6)
        #expect(journal.appendThreads.map(loop.isThread) == [true, false])
    }

    @Test func aCommitThatFailsOnThePublishersThreadIsRetriedByTheWriterThread() async throws {
        let journal = MemoryJournal(failures: 1)
        let loop = LoopThread()
        let (bus, deliveries) = try loop.bus(on: journal)
        defer { bus.close() }
        try await Self.untilTheWriterSleeps(bus)
        let published = Mutex<[PublishedEvent]>([])
        await loop.run {
            let events = (1...3).map { bus.publishRecording("e", payload: JSONValue($0)) }
            bus.commitWaitingEvents()
            published.withLock { $0 = events }
        }
        for event in published.withLock({ $0 }) { await event.dispatched() }
        #expect(journal.appendThreads.map(loop.isThread) == [true, false], "failed on the loop, retried by the writer")
        #expect(journal.appendSizes == [3])
        #expect(journal.records.map(\.seq) == [1, 2, 3])
        #expect(deliveries.seqs == [1, 2, 3])
        #expect(deliveries.onLoop == [false, false, false])
    }

    @Test func aPublishersThreadDoesNotWaitForACommitRunningElsewhere() async throws {
        let journal = MemoryJournal()
        let loop = LoopThread()
        let (bus, deliveries) = try loop.bus(on: journal)
        defer { bus.close() }
        journal.hold()
        let first = bus.publishRecording("first", payload: JSONValue.null)
        while journal.waiting.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let published = Mutex<[PublishedEvent]>([])
        // The writer thread holds the commit (its append waits): the loop's commit leaves its
        // events to it and returns at once. A loop that waited would never finish here.
        await loop.run {
            let events = (1...3).map { bus.publishRecording("e", payload: JSONValue($0)) }
            bus.commitWaitingEvents()
            published.withLock { $0 = events }
        }
        #expect(journal.waiting.load(ordering: .relaxed) == 1)
        #expect(journal.records.isEmpty)
        journal.release()
        await first.dispatched()
        for event in published.withLock({ $0 }) { await event.dispatched() }
        #expect(journal.appendSizes == [1, 3])
        #expect(journal.appendThreads.map(loop.isThread) == [false, false])
        #expect(journal.records.map(\.seq) == [1, 2, 3, 4])
        #expect(deliveries.seqs == [1, 2, 3, 4])
    }

    @Test func closeCommitsWhatALoopLeftUncommitted() async throws {
        let journal = MemoryJournal()
        let loop = LoopThread()
        let (bus, _) = try loop.bus(on: journal)
        try await Self.untilTheWriterSleeps(bus)
        let published = Mutex<[PublishedEvent]>([])
        await loop.run {
            published.withLock { $0 = (1...10).map { bus.publishRecording("e", payload: JSONValue($0)) } }
        }
        bus.close()
        #expect(journal.records.map(\.seq) == Array(1...10))
        let dispatched = published.withLock { $0.map(\.isDispatched) }
        #expect(dispatched == Array(repeating: true, count: 10))
    }

    /// Waits until the journal's writer thread sleeps for want of events (so a publish that
    /// wakes it by mistake shows).
    private static func untilTheWriterSleeps(_ bus: EventBus) async throws {
        while !bus.journalWriterSleeps { try await Task.sleep(for: .milliseconds(1)) }
    }
}

/// A thread of its own, standing in for an event loop.
private final class LoopThread: Sendable {
    private let id = Mutex<pthread_t?>(nil)

    /// True on this thread.
    var isCurrent: Bool { isThread(pthread_self()) }

    func isThread(_ thread: pthread_t) -> Bool {
        id.withLock { $0.map { pthread_equal($0, thread) != 0 } ?? false }
    }

    /// A bus on `journal` whose publishes made on this thread are committed by it, with a
    /// client subscription to everything.
    func bus(on journal: MemoryJournal) throws -> (EventBus, Deliveries) {
        let bus = try EventBus.journaled(journal, logger: quietLogger, callerCommits: { _ in self.isCurrent })
        let deliveries = Deliveries()
        bus.subscribe(
            try EventPattern("*"), owner: .client(connection: 1),
            handler: .sync { event in deliveries.log.withLock { $0.append((event.seq, self.isCurrent)) } })
        return (bus, deliveries)
    }

    /// What the subscription was delivered, in order, and whether on this thread.
    final class Deliveries: Sendable {
        let log = Mutex<[(seq: Int, onLoop: Bool)]>([])
        var seqs: [Int] { log.withLock { $0.map(\.seq) } }
        var onLoop: [Bool] { log.withLock { $0.map(\.onLoop) } }
    }

    /// Runs `body` on this thread and waits for it.
    func run(_ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                id.withLock { $0 = pthread_self() }
                body()
                continuation.resume()
            }
            thread.start()
        }
    }
}
