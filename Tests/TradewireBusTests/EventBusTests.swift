import Foundation
import Logging
import Synchronization
import Testing
import TradewireJSON

@testable import TradewireBus

struct Boom: Error {}

/// Handlers throw on purpose here: their expected warnings stay out of the test output.
let quietLogger = Logger(label: "tradewire.bus.tests", factory: { _ in SwiftLogNoOpLogHandler() })

@Suite struct EventBusTests {
    @Test func seqStartsAtOneAndIncreases() async {
        let bus = EventBus(logger: quietLogger)
        let a = await bus.publish("a")
        let b = await bus.publish("b")
        #expect(a.event.seq == 1)
        #expect(b.event.seq == 2)
        #expect(bus.statistics().lastSeq == 2)
    }

    @Test(arguments: [
        ("*", "anything", true), ("data_*", "data_ready", true), ("data_*", "data_", true),
        ("data_*", "xdata_ready", false), ("?_ready", "a_ready", true), ("?_ready", "ab_ready", false),
        ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false), ("exact", "exact", true), ("exact", "exactly", false),
        ("*ready", "signals_ready", true), ("s*s_r?ady", "signals_ready", true),
    ])
    func patternsMatch(pattern: String, type: String, expected: Bool) throws {
        #expect(try EventPattern(pattern).matches(type) == expected)
    }

    @Test func invalidNamesAndPatternsAreRefused() {
        #expect(throws: EventName.ValidationError.self) { try EventName.validateType("") }
        #expect(throws: EventName.ValidationError.self) { try EventName.validateType("has space") }
        #expect(throws: EventName.ValidationError.self) { try EventName.validateType("star*") }
        #expect(throws: EventName.ValidationError.self) {
            try EventName.validateType(String(repeating: "a", count: 129))
        }
        #expect(throws: EventName.ValidationError.self) { try EventPattern("bad/pattern") }
        #expect((try? EventName.validateType("A-z_0.9:x")) != nil)
    }

    @Test func subscribingTwiceIsANoOp() async throws {
        let bus = EventBus(logger: quietLogger)
        let count = Mutex(0)
        let handler = EventHandler.async { _ in count.withLock { $0 += 1 } }
        let first = bus.subscribe(try EventPattern("x"), owner: .inProcess("h"), handler: handler)
        let second = bus.subscribe(try EventPattern("x"), owner: .inProcess("h"), handler: handler)
        #expect(first.id == second.id)
        #expect(first.created && !second.created)
        await bus.publish("x")
        #expect(count.withLock { $0 } == 1)
    }

    @Test func unsubscribeKeepsThePatternKeyWithZero() async throws {
        let bus = EventBus(logger: quietLogger)
        let outcome = bus.subscribe(try EventPattern("x"), owner: .client(connection: 7), handler: .sync { _ in })
        #expect(bus.unsubscribe(outcome.id, owner: .client(connection: 8)) == false)
        #expect(bus.unsubscribe(outcome.id, owner: .client(connection: 7)))
        let stats = bus.statistics()
        #expect(stats.clientSubscriptionsByPattern == ["x": 0])
        #expect(stats.totalEventTypes == 1)
        #expect(stats.totalSubscribers == 0)
    }

    @Test func throwingHandlerIsCountedAndOthersStillRun() async throws {
        let bus = EventBus(logger: quietLogger)
        let ran = Mutex(0)
        bus.subscribe(try EventPattern("x"), owner: .inProcess("bad"), handler: .async { _ in throw Boom() })
        bus.subscribe(try EventPattern("x"), owner: .inProcess("badSync"), handler: .sync { _ in throw Boom() })
        bus.subscribe(
            try EventPattern("x"), owner: .inProcess("good"), handler: .async { _ in ran.withLock { $0 += 1 } })
        let published = await bus.publish("x")
        #expect(published.event.seq == 1)
        #expect(ran.withLock { $0 } == 1)
        #expect(bus.statistics().handlerErrors == 2)
        // The bus keeps working.
        await bus.publish("x")
        #expect(ran.withLock { $0 } == 2)
    }

    @Test func handlersOfOnePublishRunConcurrently() async throws {
        // Each handler waits for the other to start: only concurrent execution finishes.
        let bus = EventBus(logger: quietLogger)
        let started = Mutex(0)
        for name in ["a", "b"] {
            bus.subscribe(
                try EventPattern("x"), owner: .inProcess(name),
                handler: .async { _ in
                    started.withLock { $0 += 1 }
                    while started.withLock({ $0 }) < 2 { await Task.yield() }
                })
        }
        await bus.publish("x")
        #expect(started.withLock { $0 } == 2)
    }

    @Test func manyHandlersRunConcurrentlyAndEachFailureCounts() async throws {
        // Four handlers among sync and client subscribers, each waiting for all to start;
        // the first and the last also throw (the last runs in the publishing task itself).
        let bus = EventBus(logger: quietLogger)
        let started = Mutex(0)
        let finished = Mutex<[String]>([])
        let names = ["a", "b", "c", "d"]
        for name in names {
            bus.subscribe(
                try EventPattern("x"), owner: .inProcess(name),
                handler: .async { _ in
                    started.withLock { $0 += 1 }
                    while started.withLock({ $0 }) < names.count { await Task.yield() }
                    finished.withLock { $0.append(name) }
                    if name == "a" || name == "d" { throw Boom() }
                })
            bus.subscribe(try EventPattern("x"), owner: .inProcess(name + "-sync"), handler: .sync { _ in })
        }
        bus.subscribe(try EventPattern("x"), owner: .client(connection: 1), handler: .sync { _ in })
        let published = await bus.publish("x")
        #expect(Set(finished.withLock { $0 }) == Set(names))
        #expect(bus.statistics().handlerErrors == 2)
        #expect(published.clientSubscribers == 1)
        #expect(published.hasPendingHandlers)
    }

    @Test func publishAwaitsAsyncHandlers() async throws {
        let bus = EventBus(logger: quietLogger)
        let done = Mutex(false)
        bus.subscribe(
            try EventPattern("x"), owner: .inProcess("slow"),
            handler: .async { _ in
                try await Task.sleep(for: .milliseconds(20))
                done.withLock { $0 = true }
            })
        await bus.publish("x")
        #expect(done.withLock { $0 })
    }

    @Test func historyRingEvictsOldestAndLimitKeepsLast() async throws {
        let bus = EventBus(historyCapacity: 5)
        for i in 1...8 { await bus.publish(i % 2 == 0 ? "even" : "odd", payload: JSONValue(i)) }
        let all = bus.history()
        #expect(all.records.map(\.event.seq) == [4, 5, 6, 7, 8])
        #expect(all.oldestSeq == 4 && all.newestSeq == 8 && all.capacity == 5)
        let lastTwoEven = bus.history(matching: try EventPattern("even"), limit: 2)
        #expect(lastTwoEven.records.map(\.event.seq) == [6, 8])
        #expect(bus.history(sinceSeq: 6).records.map(\.event.seq) == [7, 8])
        #expect(bus.history(limit: 0).records.count == 5)
    }

    @Test func replayIsGaplessAndReportsTheHistoryGap() async throws {
        let bus = EventBus(historyCapacity: 3)
        for i in 1...5 { await bus.publish("t", payload: JSONValue(i)) }
        let received = Mutex<[Int]>([])
        let gap = Mutex<ReplayGap?>(nil)
        bus.subscribe(
            try EventPattern("t"), owner: .client(connection: 1),
            handler: .sync { event in received.withLock { $0.append(event.seq) } },
            replay: ReplayRequest(sinceSeq: 1),
            prelude: { _, g in gap.withLock { $0 = g } })
        await bus.publish("t", payload: JSONValue(6))
        #expect(received.withLock { $0 } == [3, 4, 5, 6])
        #expect(gap.withLock { $0 } == ReplayGap(firstSeq: 2, lastSeq: 2))
    }

    @Test func gaplessReplayUnderConcurrentPublishing() async throws {
        let bus = EventBus(historyCapacity: 100_000)
        let publishers = Task {
            await withTaskGroup(of: Void.self) { group in
                for p in 0..<4 {
                    group.addTask {
                        for i in 0..<2_000 { await bus.publish("load", payload: JSONValue(p * 10_000 + i)) }
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(5))
        let received = Mutex<[Int]>([])
        bus.subscribe(
            try EventPattern("load"), owner: .client(connection: 9),
            handler: .sync { event in received.withLock { $0.append(event.seq) } },
            replay: ReplayRequest(sinceSeq: 0))
        await publishers.value
        let seqs = received.withLock { $0 }
        #expect(seqs == Array(1...8_000))
    }

    @Test func eventJSONIsEncodedOnceWithProtocolShape() async throws {
        let fixed = Date(timeIntervalSince1970: 1_700_000_000.25)
        let bus = EventBus(clock: { fixed })
        let published = await bus.publish("t", payload: ["a": [1, "x"]] as JSONValue, metadata: ["k": "v"])
        let text = String(decoding: published.event.json, as: UTF8.self)
        #expect(
            text
                == #"{"seq":1,"event_type":"t","timestamp":"2023-11-14T22:13:20.250000Z","data":{"a":[1,"x"]},"metadata":{"k":"v"}}"#
        )
        var writer = JSONWriter()
        bus.history().records[0].encodeJSON(to: &writer, includeData: false)
        let record = try JSONParser.parse(writer.bytes)
        #expect(record["data"] == nil)
        #expect(record["data_type"] == "object")
        #expect(record["subscriber_count"] == 0)
    }

    @Test func clientAndInternalSubscribersAreCountedApart() async throws {
        let bus = EventBus(logger: quietLogger)
        bus.subscribe(try EventPattern("data_ready"), owner: .inProcess("pipeline.strategy"), handler: .async { _ in })
        bus.subscribe(try EventPattern("*"), owner: .client(connection: 1), handler: .sync { _ in })
        let published = await bus.publish("data_ready")
        #expect(published.clientSubscribers == 1)
        let stats = bus.statistics()
        #expect(stats.internalHandlersByPattern == ["data_ready": 1])
        #expect(stats.clientSubscriptionsByPattern == ["*": 1])
        #expect(bus.hasClientSubscriber(for: "anything"))
        #expect(bus.unsubscribeAll(owner: .client(connection: 1)) == 1)
        #expect(!bus.hasClientSubscriber(for: "anything"))
    }
}
