import Foundation
import Synchronization
import Testing
import TradewireJSON

@testable import TradewireBus

/// A bus on a journal that assigns seqs (a cluster's), with an in-memory journal whose
/// "tail" the test drives.
@Suite struct SequencedBusTests {
    /// Stores batches in memory; can fail, refuse, or hold appends.
    final class MemoryJournal: SequencingJournal, @unchecked Sendable {
        struct Stored {
            let event: Event
            let key: String
            let index: Int
            let node: String
            let fence: Int?
        }
        let lock = NSLock()
        var stored: [Stored] = []
        var keys: Set<String> = []
        var failuresLeft = 0
        var refuseFences = false
        var appends = 0
        let giveUpAfter: Duration

        init(giveUpAfter: Duration = .seconds(5)) { self.giveUpAfter = giveUpAfter }

        func append(_ events: [Event], batchKey: String, fence: Int?) throws {
            lock.lock()
            defer { lock.unlock() }
            appends += 1
            if refuseFences && fence != nil { throw SequencingRefusal("epoch \(fence!) is fenced") }
            if failuresLeft > 0 {
                failuresLeft -= 1
                throw CancellationError()
            }
            guard keys.insert(batchKey).inserted else { return }
            for (index, event) in events.enumerated() {
                let seq = stored.count + 1
                let copy = Event(
                    seq: seq, type: event.type, timestamp: event.timestamp,
                    payload: RecordedPayload(
                        bytes: Array(event.dataJSON), jsonTypeName: event.payload.jsonTypeName),
                    metadata: event.metadata)
                stored.append(Stored(event: copy, key: batchKey, index: index, node: "here", fence: fence))
            }
        }

        /// Another node's publish, stored directly.
        func foreign(_ type: String) {
            lock.lock()
            defer { lock.unlock() }
            let seq = stored.count + 1
            let event = Event(seq: seq, type: type, timestamp: Date(), payload: JSONValue("x"), metadata: [:])
            stored.append(Stored(event: event, key: "other-\(seq)", index: 0, node: "elsewhere", fence: nil))
        }

        /// What a tail hands over after `seq`.
        func after(_ seq: Int) -> [SequencedDelivery] {
            lock.lock()
            defer { lock.unlock() }
            return stored.dropFirst(seq).map {
                SequencedDelivery(event: $0.event, node: $0.node, batchKey: $0.key, index: $0.index)
            }
        }
    }

    /// Hands everything stored to the bus until `done` (a tail).
    static func follow(_ journal: MemoryJournal, _ bus: EventBus, until done: @escaping @Sendable () -> Bool) async {
        var delivered = 0
        while !done() {
            delivered = bus.deliverSequenced(journal.after(delivered))
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func publishesAreAcknowledgedWithTheJournalsSeqInOneOrderWithOtherNodes() async throws {
        let journal = MemoryJournal()
        let bus = EventBus.sequenced(by: journal, after: 0)
        defer { bus.close() }
        let seen = Mutex<[Int]>([])
        bus.subscribe(
            try EventPattern("*"), owner: .client(connection: 1),
            handler: .sync { event in
                seen.withLock { $0.append(event.seq) }
            })
        let typed = Mutex<[String]>([])
        bus.subscribe(
            try EventPattern("local"), owner: .inProcess("h"),
            handler: .async { event in
                // The publisher's own event keeps its typed payload for in-process handlers.
                typed.withLock { $0.append((event.payload as? JSONValue)?.stringValue ?? "recorded") }
            })
        let stop = Mutex(false)
        let tail = Task { await Self.follow(journal, bus) { stop.withLock { $0 } } }
        journal.foreign("remote")
        let first = await bus.publish("local", payload: JSONValue("typed"))
        journal.foreign("remote")
        let second = await bus.publish("local", payload: JSONValue("typed"))
        stop.withLock { $0 = true }
        await tail.value
        #expect(first.event.seq == 2 && second.event.seq == 4)
        #expect(first.failure == nil)
        #expect(seen.withLock { $0 } == [1, 2, 3, 4])
        #expect(typed.withLock { $0 } == ["typed", "typed"])
        let history = bus.history().records
        #expect(history.map(\.node) == ["elsewhere", "here", "elsewhere", "here"])
    }

    @Test func aFailedAppendIsRetriedUnderItsKeyAndAppliedOnce() async throws {
        let journal = MemoryJournal()
        journal.failuresLeft = 2
        let bus = EventBus.sequenced(by: journal, after: 0)
        defer { bus.close() }
        let stop = Mutex(false)
        let tail = Task { await Self.follow(journal, bus) { stop.withLock { $0 } } }
        let published = await bus.publish("x", payload: JSONValue(1))
        stop.withLock { $0 = true }
        await tail.value
        #expect(published.event.seq == 1)
        #expect(journal.appends == 3)
        #expect(journal.stored.count == 1)
    }

    @Test func anUnreachableJournalAnswersTheFailureAndAFencedEpochIsNotRetried() async throws {
        let journal = MemoryJournal(giveUpAfter: .milliseconds(200))
        journal.failuresLeft = 1_000_000
        let bus = EventBus.sequenced(by: journal, after: 0, fencing: { type, _ in type == "order" ? 7 : nil })
        defer { bus.close() }
        let down = await bus.publish("x", payload: JSONValue(1))
        #expect(down.failure != nil)
        #expect(down.event.seq == 0)
        journal.failuresLeft = 0
        journal.refuseFences = true
        let before = journal.appends
        let fenced = await bus.publish("order", payload: JSONValue(1))
        #expect(fenced.failure?.contains("fenced") == true)
        #expect(journal.appends == before + 1, "a refusal is final")
        #expect(journal.stored.isEmpty)
    }

    @Test func aPublishAfterCloseIsAFailureNotSeqZero() async throws {
        let bus = EventBus.sequenced(by: MemoryJournal(), after: 0)
        bus.close()
        let late = bus.publishRecording("x", payload: JSONValue(1))
        #expect(late.isDispatched)
        #expect(late.failure != nil)
    }

    @Test func aGapIsNeverDeliveredPastAndDuplicatesAreIgnored() throws {
        let journal = MemoryJournal()
        let bus = EventBus.sequenced(by: journal, after: 10)
        defer { bus.close() }
        func delivery(_ seq: Int) -> SequencedDelivery {
            SequencedDelivery(
                event: Event(seq: seq, type: "t", timestamp: Date(), payload: JSONValue.null, metadata: [:]), node: "n",
                batchKey: "k\(seq)", index: 0)
        }
        #expect(bus.deliverSequenced([delivery(11), delivery(13)]) == 11)
        #expect(bus.deliverSequenced([delivery(11), delivery(12), delivery(13)]) == 13)
        #expect(bus.history().records.map(\.event.seq) == [11, 12, 13])
    }
}
