import Synchronization
import Testing
import TradewireJSON

@testable import TradewireBus

/// The original system's bus tests (tests/test_pipeline.py), translated.
@Suite struct EventBusReferenceTests {
    @Test func twoHandlersBothReceiveAPublish() async throws {
        let bus = EventBus(logger: quietLogger)
        let calls = Mutex<[String]>([])
        for name in ["handler1", "handler2"] {
            bus.subscribe(
                try EventPattern("test_event"), owner: .inProcess(name),
                handler: .async { event in calls.withLock { $0.append("\(name):\(event.payload.jsonValue)") } })
        }
        await bus.publish("test_event", payload: JSONValue("test_data"))
        let recorded = calls.withLock { $0 }
        #expect(recorded.count == 2)
        #expect(Set(recorded) == ["handler1:\"test_data\"", "handler2:\"test_data\""])
    }

    @Test func statsCountTypesSubscribersAndPublishes() async throws {
        let bus = EventBus(logger: quietLogger)
        let handler = EventHandler.async { _ in }
        bus.subscribe(try EventPattern("event1"), owner: .client(connection: 1), handler: handler)
        bus.subscribe(try EventPattern("event2"), owner: .client(connection: 1), handler: handler)
        await bus.publish("event1", payload: JSONValue(1))
        await bus.publish("event2", payload: JSONValue(2))
        let stats = bus.statistics()
        #expect(stats.totalEventTypes == 2)
        #expect(stats.totalSubscribers == 2)
        #expect(stats.eventsPublished == 2)
        #expect(stats.eventsDelivered == 2)
    }

    @Test func historyIsWrittenWithoutSubscribers() async throws {
        let bus = EventBus(logger: quietLogger)
        await bus.publish("test_event", payload: JSONValue("a"))
        await bus.publish("test_event", payload: JSONValue("b"))
        await bus.publish("other_event", payload: JSONValue("c"))
        #expect(bus.history().records.count == 3)
        #expect(bus.history(matching: try EventPattern("test_event")).records.count == 2)
        #expect(bus.history().records.map(\.subscriberCount) == [0, 0, 0])
    }
}
