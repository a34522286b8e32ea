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
        let failure: JournalError? = state.withLock { s in
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
}
