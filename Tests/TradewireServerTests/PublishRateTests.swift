import Foundation
import Testing
import TradewireJSON

@testable import TradewireServer

/// `--publish-rate N[/BURST]` (PROTOCOL §12): a token bucket per connection; over it a
/// publish gets -32002 `rate_limited` with `retry_after_ms`, and nothing is recorded.
@Suite struct PublishRateTests {
    @Test func parsesRatesAndBursts() throws {
        #expect(try PublishRate.parse("100").get() == PublishRate(perSecond: 100, burst: 100))
        #expect(try PublishRate.parse("0.5").get() == PublishRate(perSecond: 0.5, burst: 1))
        #expect(try PublishRate.parse("2.5/10").get() == PublishRate(perSecond: 2.5, burst: 10))
        for bad in ["0", "-1", "nan", "inf", "1e10", "5/0", "5/-1", "5/x", "5/", "/5", "5/2/1", "", "abc"] {
            #expect(throws: PublishRateError.self, "\(bad)") { try PublishRate.parse(bad).get() }
        }
    }

    @Test func theBucketRefillsAtTheRateUpToTheBurst() {
        let start = ContinuousClock.now
        let bucket = TokenBucket(rate: PublishRate(perSecond: 10, burst: 3), now: start)
        #expect((0..<3).allSatisfy { _ in bucket.take(now: start) == nil }, "a full burst at once")
        let wait = bucket.take(now: start)
        #expect(wait == .milliseconds(100), "one token every 100 ms")
        #expect(bucket.take(now: start + .milliseconds(99)) != nil)
        #expect(bucket.take(now: start + .milliseconds(100)) == nil)
        // A long pause refills to the burst, never beyond it.
        let later = start + .seconds(60)
        #expect((0..<3).allSatisfy { _ in bucket.take(now: later) == nil })
        #expect(bucket.take(now: later) != nil)
    }

    @Test func overTheRateAPublishIsRefusedAndNotRecorded() async throws {
        try await withDaemon(publishRate: PublishRate(perSecond: 2, burst: 3)) { path, _ in
            let type = "rate.\(UInt32.random(in: 0...UInt32.max))"
            let publish = #"{"jsonrpc":"2.0","id":7,"method":"publish","params":{"event_type":"\#(type)","data":1}}"#
            let ping = #"{"jsonrpc":"2.0","id":8,"method":"ping"}"#
            let answers = try exchange(path, [publish, publish, publish, publish, ping], expecting: 5)
            let publishes = answers.filter { $0["id"] == 7 }
            #expect(publishes.filter { $0["result"] != nil }.count == 3, "the burst")
            let refused = try #require(publishes.first { $0["error"] != nil })
            #expect(refused.errorCode == -32002 && refused.errorType == "rate_limited")
            let retry = refused["error"]?["data"]?["retry_after_ms"]?.intValue ?? 0
            #expect((1...500).contains(retry), "\(retry) ms until the next token at 2/s")
            #expect(
                answers.contains { $0["id"] == 8 && $0["result"]?["pong"] == true }, "other methods are not limited")
            // Another connection has its own bucket; nothing of the refused publish was recorded.
            let other = try exchange(path, [publish], expecting: 1)
            #expect(other.first?["result"] != nil)
            let read = try exchange(
                path, [#"{"jsonrpc":"2.0","id":9,"method":"get_event_history","params":{"event_type":"\#(type)"}}"#],
                expecting: 1)
            let history = read.first?["result"]?["events"]?.arrayValue ?? []
            #expect(history.count == 4, "3 from the first connection, 1 from the second")
            // After retry_after_ms the first connection's publish goes through again.
            try await Task.sleep(for: .milliseconds(retry + 20))
            let again = try exchange(path, [publish], expecting: 1)
            #expect(again.first?["result"] != nil)
        }
    }
}
