import Foundation
import Testing
import TradewireJSON
import TradewireTesting

@testable import TradewireBus
@testable import TradewireServer

/// One connection of a consumer test: calls methods and collects the deliveries that
/// arrive meanwhile.
final class ConsumerConnection {
    let socket: LineSocket
    private var nextID = 1
    private(set) var deliveries: [JSONValue] = []
    private(set) var notices: [JSONValue] = []

    init(_ path: String) throws {
        socket = try LineSocket(path: path)
        socket.setReadTimeout(seconds: 10)
    }

    /// Sends a request and returns its response (deliveries read meanwhile are kept).
    func call(_ method: String, _ params: JSONValue = [:]) throws -> JSONValue {
        let id = nextID
        nextID += 1
        let request: JSONValue = ["jsonrpc": "2.0", "id": JSONValue(id), "method": JSONValue(method), "params": params]
        socket.write(JSONWriter.encode(request) + [10])
        while let line = socket.readLine() {
            let value = try JSONParser.parse(line)
            if value["id"]?.intValue == id { return value }
            keep(value)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    private func keep(_ value: JSONValue) {
        if value["method"] == "event" { deliveries.append(value) } else { notices.append(value) }
    }

    /// The next delivery, waiting up to `milliseconds`; nil when none came.
    func nextDelivery(within milliseconds: Int = 5000) -> JSONValue? {
        if !deliveries.isEmpty { return deliveries.removeFirst() }
        socket.setReadTimeout(milliseconds: milliseconds)
        defer { socket.setReadTimeout(seconds: 10) }
        while let line = socket.readLine() {
            guard let value = try? JSONParser.parse(line) else { continue }
            keep(value)
            if !deliveries.isEmpty { return deliveries.removeFirst() }
        }
        return nil
    }

    /// Deliveries until none arrives for `quiet` ms.
    func drain(quiet: Int = 300) -> [JSONValue] {
        var all: [JSONValue] = []
        while let delivery = nextDelivery(within: quiet) { all.append(delivery) }
        return all
    }
}

extension JSONValue {
    var deliverySeq: Int? { self["params"]?["event"]?["seq"]?.intValue }
    var attempt: Int? { self["params"]?["delivery"]?["attempt"]?.intValue }
}

func publish(_ path: String, _ type: String, count: Int, data: JSONValue = 1) throws -> [Int] {
    let lines = (0..<count).map { i in
        JSONWriter.string(
            [
                "jsonrpc": "2.0", "id": JSONValue(i), "method": "publish",
                "params": ["event_type": JSONValue(type), "data": data],
            ] as JSONValue)
    }
    return try exchange(path, lines, expecting: count).compactMap { $0["result"]?["seq"]?.intValue }.sorted()
}

/// Durable consumers (PROTOCOL §11, §14) against an in-process daemon.
@Suite(.serialized) struct ConsumerTests {
    static func subscribe(
        _ connection: ConsumerConnection, _ name: String, _ pattern: String, _ options: JSONObject = [:]
    ) throws -> JSONValue {
        var params: JSONObject = ["event_type": JSONValue(pattern), "consumer": JSONValue(name)]
        for member in options { params[member.key] = member.value }
        return try connection.call("subscribe", .object(params))
    }

    @Test func deliveriesCarryTheConsumerAndAckSettlesThem() async throws {
        try await withDaemon { path, _ in
            let member = try ConsumerConnection(path)
            let answer = try Self.subscribe(member, "billing", "job.*")
            #expect(answer["result"]?["consumer"] == "billing")
            #expect(answer["result"]?["subscription"]?.stringValue?.hasPrefix("s-") == true)
            let seqs = try publish(path, "job.done", count: 3)
            var got: [Int] = []
            for _ in 0..<3 {
                let delivery = try #require(member.nextDelivery())
                #expect(delivery["params"]?["delivery"]?["consumer"] == "billing")
                #expect(delivery.attempt == 1)
                #expect(delivery["params"]?["subscription"] == answer["result"]?["subscription"])
                got.append(try #require(delivery.deliverySeq))
            }
            #expect(got == seqs)
            #expect(
                try member.call("ack", ["consumer": "billing", "seq": JSONValue(seqs[0])])["result"]?["acked"] == 1)
            #expect(
                try member.call("ack", ["consumer": "billing", "seq": JSONValue(seqs[0])])["result"]?["acked"] == 0)
            #expect(
                try member.call("ack", ["consumer": "billing", "up_to_seq": JSONValue(seqs[2])])["result"]?["acked"]
                    == 2)
            let listed = try member.call("get_consumers")["result"]?["consumers"]?.arrayValue ?? []
            let billing = try #require(listed.first { $0["consumer"] == "billing" })
            #expect(billing["pending"] == 0 && billing["members"] == 1 && billing["pattern"] == "job.*")
            #expect(billing["position"]?.intValue == seqs[2])
            #expect(member.nextDelivery(within: 300) == nil, "nothing is redelivered once acknowledged")
        }
    }

    @Test func unacknowledgedEventsComeBackThenBecomeDeadLetters() async throws {
        try await withDaemon { path, _ in
            let member = try ConsumerConnection(path)
            _ = try Self.subscribe(member, "flaky", "dl.*", ["ack_wait_ms": 150, "max_deliver": 2])
            let seq = try #require(try publish(path, "dl.one", count: 1).first)
            #expect(member.nextDelivery()?.attempt == 1)
            let second = try #require(member.nextDelivery())
            #expect(second.attempt == 2 && second.deliverySeq == seq, "redelivered after ack_wait")
            #expect(member.nextDelivery(within: 500) == nil, "max_deliver reached: no third attempt")
            for _ in 0..<2 {  // reading removes nothing
                let letters = try member.call("get_dead_letters", ["consumer": "flaky"])["result"]?["dead_letters"]
                let letter = try #require(letters?.arrayValue?.first)
                #expect(letters?.arrayValue?.count == 1)
                #expect(letter["seq"]?.intValue == seq && letter["attempts"] == 2 && letter["event_type"] == "dl.one")
                #expect(letter["last_error"] == "ack_wait expired" && letter["event"]?["seq"]?.intValue == seq)
            }
            let consumers = try member.call("get_consumers")["result"]?["consumers"]?.arrayValue ?? []
            #expect(consumers.first?["dead_letters"] == 1 && consumers.first?["pending"] == 0)
            let id = try #require(
                try member.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue?.first?["id"]?.intValue)
            #expect(try member.call("retry_dead_letter", ["id": JSONValue(id)])["result"]?["ok"] == true)
            let retried = try #require(member.nextDelivery())
            #expect(retried.attempt == 1 && retried.deliverySeq == seq, "a retried dead letter starts from attempt 1")
            #expect(try member.call("ack", ["consumer": "flaky", "seq": JSONValue(seq)])["result"]?["acked"] == 1)
            #expect(try member.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue?.isEmpty == true)
            #expect(try member.call("retry_dead_letter", ["id": JSONValue(id)]).errorCode == -32041)
            #expect(try member.call("discard_dead_letter", ["id": JSONValue(id)])["result"]?["removed"] == 0)
        }
    }

    @Test func nakRedeliversAtOnceOrAfterItsDelayAndCountsTowardMaxDeliver() async throws {
        try await withDaemon { path, _ in
            let member = try ConsumerConnection(path)
            _ = try Self.subscribe(member, "naks", "nak.*", ["max_deliver": 3])
            let seq = try #require(try publish(path, "nak.one", count: 1).first)
            #expect(member.nextDelivery()?.attempt == 1)
            _ = try member.call("nak", ["consumer": "naks", "seq": JSONValue(seq)])
            #expect(member.nextDelivery(within: 1000)?.attempt == 2, "nak without delay: at once")
            let start = ContinuousClock.now
            _ = try member.call("nak", ["consumer": "naks", "seq": JSONValue(seq), "delay_ms": 400])
            #expect(member.nextDelivery(within: 200) == nil, "not before the delay")
            #expect(member.nextDelivery(within: 2000)?.attempt == 3)
            #expect(ContinuousClock.now - start >= .milliseconds(400))
            _ = try member.call("nak", ["consumer": "naks", "seq": JSONValue(seq), "error": "bad input"])
            let letter = try member.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue?.first
            #expect(letter?["last_error"] == "bad input" && letter?["attempts"] == 3)
            let id = try #require(letter?["id"]?.intValue)
            #expect(try member.call("discard_dead_letter", ["id": JSONValue(id)])["result"]?["removed"] == 1)
            #expect(try member.call("get_dead_letters")["result"]?["dead_letters"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func membersShareTheEventsAndALeaversEventsGoToTheOthers() async throws {
        try await withDaemon { path, _ in
            let first = try ConsumerConnection(path)
            let second = try ConsumerConnection(path)
            _ = try Self.subscribe(first, "group", "q.*")
            _ = try Self.subscribe(second, "group", "q.*")
            let seqs = try publish(path, "q.job", count: 20)
            let a = first.drain()
            let b = second.drain()
            #expect(a.count + b.count == 20 && !a.isEmpty && !b.isEmpty, "\(a.count) + \(b.count)")
            #expect(Set(a.compactMap(\.deliverySeq)).union(b.compactMap(\.deliverySeq)) == Set(seqs))
            #expect(a.allSatisfy { $0.attempt == 1 } && b.allSatisfy { $0.attempt == 1 })
            // The first acknowledges its share; the second leaves without acknowledging: its
            // events go to the first at once, as attempt 2.
            _ = try first.call("ack", ["consumer": "group", "up_to_seq": JSONValue(seqs.last!)])
            let bSeqs = Set(b.compactMap(\.deliverySeq))
            _ = try second.call("unsubscribe", ["subscription": b[0]["params"]!["subscription"]!])
            let moved = first.drain()
            #expect(Set(moved.compactMap(\.deliverySeq)) == bSeqs)
            #expect(moved.allSatisfy { $0.attempt == 2 })
            // Acks from a connection that left are refused.
            #expect(try second.call("ack", ["consumer": "group", "seq": JSONValue(seqs[0])]).errorCode == -32040)
        }
    }

    @Test func maxInFlightBoundsWhatIsOut() async throws {
        try await withDaemon { path, _ in
            let member = try ConsumerConnection(path)
            _ = try Self.subscribe(member, "narrow", "n.*", ["max_in_flight": 3])
            let seqs = try publish(path, "n.job", count: 10)
            let out = member.drain()
            #expect(out.compactMap(\.deliverySeq) == Array(seqs.prefix(3)))
            #expect(try member.call("ack", ["consumer": "narrow", "seq": JSONValue(seqs[1])])["result"]?["acked"] == 1)
            #expect(member.drain().compactMap(\.deliverySeq) == [seqs[3]], "one acknowledged, one more out")
            let state = try member.call("get_consumers")["result"]?["consumers"]?.arrayValue?.first
            #expect(state?["pending"] == 3)
        }
    }

    @Test func badConsumerRequestsGetPreciseErrors() async throws {
        try await withDaemon { path, _ in
            let member = try ConsumerConnection(path)
            let other = try ConsumerConnection(path)
            _ = try Self.subscribe(member, "fixed", "a.*", ["max_deliver": 4])
            #expect(try other.call("ack", ["consumer": "fixed", "seq": 1]).errorCode == -32040)
            #expect(try other.call("nak", ["consumer": "fixed", "seq": 1]).errorType == "unknown_consumer")
            let wrongPattern = try Self.subscribe(other, "fixed", "b.*")
            #expect(wrongPattern.errorCode == -32602)
            #expect(wrongPattern["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/event_type")
            #expect(try Self.subscribe(other, "fixed", "a.*", ["max_deliver": 5]).errorCode == -32602)
            #expect(try Self.subscribe(other, "fixed", "a.*")["result"] != nil, "omitted options take the consumer's")
            #expect(try other.call("subscribe", ["event_type": "a.*", "max_deliver": 2]).errorCode == -32602)
            for bad: JSONValue in ["", "has space", .string(String(repeating: "x", count: 65)), 7] {
                #expect(try other.call("subscribe", ["event_type": "a.*", "consumer": bad]).errorCode == -32602)
            }
            #expect(try Self.subscribe(other, "z", "a.*", ["ack_wait_ms": 0]).errorCode == -32602)
            #expect(try Self.subscribe(other, "z", "a.*", ["max_in_flight": 10_001]).errorCode == -32602)
            #expect(try member.call("ack", ["consumer": "fixed"]).errorCode == -32602)
            #expect(try member.call("ack", ["consumer": "fixed", "seq": 1, "up_to_seq": 2]).errorCode == -32602)
            #expect(try member.call("nak", ["consumer": "fixed", "seq": 1, "delay_ms": -1]).errorCode == -32602)
            #expect(try member.call("retry_dead_letter", ["id": "1"]).errorCode == -32602)
            #expect(try member.call("delete_consumer", ["consumer": "nope"])["result"]?["removed"] == 0)
            #expect(try member.call("delete_consumer", ["consumer": "fixed"])["result"]?["removed"] == 1)
            #expect(try member.call("ack", ["consumer": "fixed", "seq": 1]).errorCode == -32040)
        }
    }

    @Test func consumerDeliveriesAreNeverDroppedByTheOutboxBudget() async throws {
        try await withDaemon(outboxBudget: 16 << 10) { path, _ in
            let member = try ConsumerConnection(path)
            _ = try Self.subscribe(member, "steady", "big.*", ["max_in_flight": 10_000])
            _ = try member.call("subscribe", ["event_type": "big.*"])  // a plain one beside it
            let payload = JSONValue(String(repeating: "x", count: 1024))
            let seqs = try publish(path, "big.blob", count: 300, data: payload)
            var consumed: [Int] = []
            var plain = 0
            while let delivery = member.nextDelivery(within: 1000) {
                if delivery["params"]?["delivery"] != nil {
                    consumed.append(delivery.deliverySeq ?? 0)
                } else {
                    plain += 1
                }
            }
            let dropped = member.notices.filter { $0["method"] == "events_dropped" }
            #expect(!dropped.isEmpty && plain < 300, "the plain subscription lost events over the budget")
            #expect(
                consumed.count == 300 && consumed == seqs, "the consumer got every event, in order (\(consumed.count))")
        }
    }

    @Test(arguments: [TestStorage.journal, .ephemeral])
    func aConsumerFarBehindCatchesUpWithoutAGap(storage: TestStorage) async throws {
        try await withDaemon(historyCapacity: 100, storage: storage) { path, _ in
            let creator = try ConsumerConnection(path)
            let subscription = try Self.subscribe(creator, "late", "far.*", ["max_in_flight": 10_000])["result"]?[
                "subscription"]
            _ = try creator.call("unsubscribe", ["subscription": subscription ?? .null])
            let count = ConsumerState.liveBacklogLimit + 1500
            var seqs: [Int] = []
            for chunk in stride(from: 0, to: count, by: 1000) {
                seqs += try publish(path, "far.x", count: min(1000, count - chunk))
            }
            let member = try ConsumerConnection(path)
            #expect(try Self.subscribe(member, "late", "far.*")["result"] != nil)
            var got: [Int] = []
            while let delivery = member.nextDelivery(within: 2000) {
                got.append(delivery.deliverySeq ?? 0)
                if got.count % 1000 == 0 {
                    _ = try member.call("ack", ["consumer": "late", "up_to_seq": JSONValue(got.last!)])
                }
            }
            let missing = Set(seqs).subtracting(got).sorted()
            #expect(got.count == seqs.count, "\(got.count) of \(seqs.count); first missing: \(missing.prefix(5))")
            #expect(got == got.sorted() && Set(got).count == got.count, "in order, once each")
        }
    }
}
