import Foundation
import Testing
import TradewireJSON

@testable import TradewireBus
@testable import TradewireHTTP

@Suite struct EventStreamTests {
    func event(_ seq: Int, _ type: String = "t.x", bytes: Int = 10) -> Event {
        Event(
            seq: seq, type: type, timestamp: .init(timeIntervalSince1970: 0),
            payload: JSONValue(String(repeating: "x", count: bytes)), metadata: [:])
    }

    func frames(_ take: EventStream.Take) -> [UInt8] {
        var bytes: [UInt8] = []
        switch take {
        case .items(let items), .end(let items, _): ServerSentEvents.append(items, to: &bytes)
        case .idle: break
        }
        return bytes
    }

    @Test func eventsAreFramedWithTheirSeqAndTheirJSON() async throws {
        let stream = EventStream(budget: 1 << 20)
        let first = event(7)
        stream.enqueue(first)
        stream.enqueue(event(9, "t.y"))
        let text = String(decoding: frames(await stream.take(waitingUpTo: .seconds(5))), as: UTF8.self)
        #expect(
            text
                == "id: 7\ndata: \(String(decoding: first.json, as: UTF8.self))\n\nid: 9\ndata: "
                + #"{"seq":9,"event_type":"t.y","timestamp":"1970-01-01T00:00:00.000000Z","data":"xxxxxxxxxx","metadata":{}}"#
                + "\n\n")
    }

    @Test func anIdleStreamReportsIdleAfterTheWait() async {
        let stream = EventStream(budget: 1 << 20)
        let start = ContinuousClock.now
        guard case .idle = await stream.take(waitingUpTo: .milliseconds(50)) else {
            Issue.record("expected idle")
            return
        }
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        #expect(String(decoding: ServerSentEvents.keepAlive, as: UTF8.self) == ": keep-alive\n\n")
    }

    @Test func aWaitingWriterWakesForTheNextEvent() async throws {
        let stream = EventStream(budget: 1 << 20)
        async let taken = stream.take(waitingUpTo: .seconds(30))
        try await Task.sleep(for: .milliseconds(20))
        stream.enqueue(event(1))
        guard case .items(let items) = await taken else {
            Issue.record("expected items")
            return
        }
        #expect(items.count == 1)
    }

    @Test func aStreamTooFarBehindEndsAfterWhatItHolds() async {
        let stream = EventStream(budget: 1_000)
        for seq in 1...50 { stream.enqueue(event(seq, bytes: 100)) }
        guard case .end(let items, .behind) = await stream.take(waitingUpTo: .seconds(5)) else {
            Issue.record("expected the end")
            return
        }
        let seqs = items.compactMap { item -> Int? in if case .event(let e) = item { e.seq } else { nil } }
        #expect(!seqs.isEmpty && seqs == Array(1...seqs.count), "a prefix, in order: the reconnection resumes")
        #expect(seqs.count < 50)
        let closing = String(decoding: ServerSentEvents.closing(.behind, budget: 1_000), as: UTF8.self)
        #expect(closing == ": closed: fell more than 1000 bytes behind; reconnect with Last-Event-ID to resume\n\n")
    }

    @Test func oneEventIsAcceptedWhateverItsSize() async {
        let stream = EventStream(budget: 10)
        stream.enqueue(event(1, bytes: 1_000))
        guard case .items(let items) = await stream.take(waitingUpTo: .seconds(5)) else {
            Issue.record("expected items")
            return
        }
        #expect(items.count == 1)
    }

    @Test func aGapBeforeAnyEventIsToldAsEventsDropped() async {
        let stream = EventStream(budget: 1 << 20)
        stream.gap(ReplayGap(firstSeq: 1, lastSeq: 41))
        stream.enqueue(event(42))
        let text = String(decoding: frames(await stream.take(waitingUpTo: .seconds(5))), as: UTF8.self)
        #expect(
            text.hasPrefix("event: events_dropped\ndata: {\"count\":null,\"first_seq\":1,\"last_seq\":41}\n\nid: 42\n"))
    }

    @Test func aGapAfterReplayedEventsEndsTheStreamSoTheReconnectionGoesOn() async {
        let stream = EventStream(budget: 1 << 20)
        stream.enqueue(event(1))
        stream.gap(ReplayGap(firstSeq: 2, lastSeq: 9))
        stream.enqueue(event(10))
        guard case .end(let items, .replayLimit) = await stream.take(waitingUpTo: .seconds(5)) else {
            Issue.record("expected the end")
            return
        }
        #expect(items.count == 1)
    }

    @Test func finishingEndsAWaitingWriter() async throws {
        let streams = EventStreams(maximum: 2)
        let (_, stream) = try #require(streams.open(budget: 1 << 20))
        async let taken = stream.take(waitingUpTo: .seconds(30))
        try await Task.sleep(for: .milliseconds(20))
        streams.closeAll()
        guard case .end(let items, .shutdown) = await taken else {
            Issue.record("expected the end")
            return
        }
        #expect(items.isEmpty)
        #expect(streams.open(budget: 1) == nil, "no stream opens once the daemon stops")
    }

    @Test func streamsAreBounded() throws {
        let streams = EventStreams(maximum: 2)
        let a = try #require(streams.open(budget: 1))
        _ = try #require(streams.open(budget: 1))
        #expect(streams.open(budget: 1) == nil)
        streams.remove(a.id)
        #expect(streams.open(budget: 1) != nil)
        #expect(streams.count == 2)
    }
}
