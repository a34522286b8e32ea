import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TradewireBus
import TradewireJSON
import TradewireJournal

@testable import TradewireServer

/// Wake-ups a burst collects: a plain batch wakes its outboxes when it closes; a read round's
/// batch stays open over every read of the round and wakes each outbox once, after them.
@Suite struct WakeupBatchTests {
    /// Outboxes on `loop` whose drains are written down in order.
    private final class Drains: Sendable {
        let log = Mutex<[String]>([])
        func outbox(_ name: String, on loop: any EventLoop) -> Outbox {
            Outbox(budget: 1 << 20, eventLoop: loop) { self.record(name) }
        }
        func record(_ name: String) { log.withLock { $0.append(name) } }
        var drained: [String] { log.withLock { $0 } }
    }

    /// Runs `body` with one event loop of its own, shut down afterwards whatever happens.
    private func withLoop(_ body: (any EventLoop) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do { try await body(group.next()) } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    @Test func aPlainBatchDrainsItsOutboxesWhenItCloses() async throws {
        try await withLoop { loop in
            let drains = Drains()
            let seen = try await loop.submit { () -> [[String]] in
                let a = drains.outbox("a", on: loop)
                var seen: [[String]] = []
                WakeupBatch.collect {
                    a.enqueue(line: Array("x".utf8))
                    seen.append(drains.drained)
                }
                seen.append(drains.drained)
                return seen
            }.get()
            #expect(seen == [[], ["a"]])
        }
    }

    @Test func aReadRoundWakesEachOutboxOnceAfterAllItsReads() async throws {
        try await withLoop { loop in
            let drains = Drains()
            let seen = try await loop.submit { () -> [[String]] in
                let a = drains.outbox("a", on: loop)
                let b = drains.outbox("b", on: loop)
                var seen: [[String]] = []
                // Three connections read in one round: the second and third enqueue to outboxes
                // the first already woke.
                WakeupBatch.collectForReadRound(on: loop) { a.enqueue(line: Array("1".utf8)) }
                seen.append(drains.drained)
                WakeupBatch.collectForReadRound(on: loop) {
                    b.enqueue(line: Array("2".utf8))
                    a.enqueue(line: Array("3".utf8))
                }
                seen.append(drains.drained)
                // A nested plain batch inside the round does not close it.
                WakeupBatch.collect { b.enqueue(line: Array("4".utf8)) }
                seen.append(drains.drained)
                return seen
            }.get()
            #expect(seen == [[], [], []])
            // The task that ends the round was queued behind this one.
            try await loop.submit {}.get()
            #expect(drains.drained == ["a", "b"])
            // The next round opens a fresh batch.
            let next = try await loop.submit { () -> [String] in
                let c = drains.outbox("c", on: loop)
                WakeupBatch.collectForReadRound(on: loop) { c.enqueue(line: Array("5".utf8)) }
                return drains.drained
            }.get()
            #expect(next == ["a", "b"])
            try await loop.submit {}.get()
            #expect(drains.drained == ["a", "b", "c"])
        }
    }

    /// The daemon's journaled bus: a read round's publishes wait for the journal until the
    /// round ends, then the loop commits them itself, delivers them there, and wakes their
    /// subscribers' outboxes once, with the rest of the round.
    @Test func aReadRoundCommitsItsPublishesWhenItEndsAndDeliversThemOnItsLoop() async throws {
        let directory = "/tmp/tw-wakeup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "tradewire.tests", factory: { _ in SwiftLogNoOpLogHandler() })
        let journal = try SQLiteJournal.open(directory: directory, sync: .normal, logger: logger)
        defer { journal.close() }
        let bus = try EventBus.journaled(
            journal, logger: logger, dispatchScope: { ServerDispatch.batchingWakeups($0) },
            callerCommits: { ServerDispatch.commitsAtEndOfReadRound($0) })
        defer { bus.close() }
        try await withLoop { loop in
            let drains = Drains()
            let outbox = drains.outbox("subscriber", on: loop)
            let deliveredOnLoop = Mutex<[Bool]>([])
            bus.subscribe(
                try EventPattern("round.*"), owner: .client(connection: 1),
                handler: .sync { event in
                    deliveredOnLoop.withLock { $0.append(loop.inEventLoop) }
                    outbox.enqueue(line: Array("\(event.seq)".utf8))
                })
            // Off a read round, nothing is promised: the writer thread commits.
            #expect(!ServerDispatch.commitsAtEndOfReadRound(bus))
            let (inRound, published) = try await loop.submit { () -> (Bool, [PublishedEvent]) in
                var inRound = false
                var published: [PublishedEvent] = []
                WakeupBatch.collectForReadRound(on: loop) {
                    published = (1...3).map { bus.publishRecording("round.e", payload: JSONValue($0)) }
                }
                WakeupBatch.collectForReadRound(on: loop) {
                    inRound = ServerDispatch.commitsAtEndOfReadRound(bus)
                    published.append(bus.publishRecording("round.e", payload: JSONValue(4)))
                }
                return (inRound, published)
            }.get()
            #expect(inRound)
            // The task that ends the round was queued behind that one: it has run once this
            // one has.
            let (dispatched, drainedThen, stored) = try await loop.submit {
                (published.map(\.isDispatched), drains.drained, (try? journal.newestSeq()) ?? -1)
            }.get()
            #expect(dispatched == [true, true, true, true])
            #expect(stored == 4)
            #expect(drainedThen == ["subscriber"], "one wake-up for the round's four events")
            #expect(deliveredOnLoop.withLock { $0 } == [true, true, true, true])
            #expect(published.map(\.event.seq) == [1, 2, 3, 4])
        }
    }
}
