import NIOCore
import NIOPosix
import Synchronization
import Testing

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
}
