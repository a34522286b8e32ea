import Foundation
import NIOCore
import NIOPosix
import Testing
import TradewireBus
import TradewireJSON
import TradewireRPC

@testable import TradewireServer

/// What an outbox writes to the socket for the items it queues.
@Suite struct OutboxTests {
    /// Queues through `fill`, then takes and writes everything as one drain would.
    private func written(_ fill: (Outbox) -> Void) -> (lines: [UInt8], queuedBefore: Int, after: Int) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let outbox = Outbox(budget: 1 << 20, eventLoop: group.next()) {}
        fill(outbox)
        let queued = outbox.queuedBytes
        var buffer = ByteBuffer()
        while let items = outbox.take(maxBytes: 1 << 20) { Outbox.write(items, into: &buffer) }
        return (Array(buffer.readableBytesView), queued, outbox.queuedBytes)
    }

    @Test func receiptWrittenAtDrainIsTheMethodsResponse() throws {
        let bus = EventBus()
        bus.subscribe(try EventPattern("demo.*"), owner: .client(connection: 1), handler: .sync { _ in })
        bus.subscribe(try EventPattern("demo.tick"), owner: .client(connection: 2), handler: .sync { _ in })
        var cases: [(JSONValue, PublishedEvent)] = []
        let types = ["demo.tick", "demo.x-1:2_3", String(repeating: "a", count: EventName.maximumLength)]
        let ids: [JSONValue] = [1, "req-7", 0, -12, 9_007_199_254_740_993, "é \"q\""]
        for (i, id) in ids.enumerated() {
            let published = bus.publishRecording(types[i % types.count], payload: ["i": JSONValue(i)] as JSONValue)
            cases.append((id, published))
        }
        let (lines, queued, after) = written { outbox in
            for (id, published) in cases {
                outbox.enqueue(receipt: id, event: published.event, subscribers: published.clientSubscribers)
            }
        }
        var expected: [UInt8] = []
        for (id, published) in cases {
            expected += RPCResponse.success(id: id, rawResult: DaemonMethods.receiptBytes(published))
            expected.append(UInt8(ascii: "\n"))
        }
        #expect(String(decoding: lines, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        // Each line parses, with the event's seq and the matching client subscriptions.
        let parsed = try String(decoding: lines, as: UTF8.self).split(separator: "\n").map {
            try JSONParser.parse(String($0))
        }
        #expect(parsed.map { $0["result"]?["subscribers"] } == [2, 1, 0, 2, 1, 0])
        #expect(parsed.map { $0["result"]?["seq"]?.intValue } == Array(1...6))
        // What the budget counted is at least what was written, and it is all given back.
        #expect(queued >= lines.count)
        #expect(after == 0)
    }
}
