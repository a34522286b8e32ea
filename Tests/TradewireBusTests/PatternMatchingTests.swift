import Foundation
import Testing
import TradewireJSON

@testable import TradewireBus

/// The compiled glob matcher against a plain recursive reference, and the match cache's bound.
@Suite struct PatternMatchingTests {
    /// The textbook recursive definition of `*` / `?` globbing (exponential, fine for short inputs).
    static func reference(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        guard let p = pattern.first else { return text.isEmpty }
        if p == UInt8(ascii: "*") {
            return reference(pattern.dropFirst(), text) || (!text.isEmpty && reference(pattern, text.dropFirst()))
        }
        guard let t = text.first else { return false }
        return (p == UInt8(ascii: "?") || p == t) && reference(pattern.dropFirst(), text.dropFirst())
    }

    @Test func compiledMatcherAgreesWithTheReference() throws {
        var generator = SystemRandomNumberGenerator()
        let patternAlphabet = Array("ab*?".utf8)
        let textAlphabet = Array("abc".utf8)
        for _ in 0..<20_000 {
            let pattern = (0..<Int.random(in: 1...8, using: &generator)).map { _ in
                patternAlphabet.randomElement(using: &generator)!
            }
            let text = (0..<Int.random(in: 1...10, using: &generator)).map { _ in
                textAlphabet.randomElement(using: &generator)!
            }
            let expected = Self.reference(pattern[...], text[...])
            let got = try EventPattern(String(decoding: pattern, as: UTF8.self)).matches(
                String(decoding: text, as: UTF8.self))
            #expect(
                got == expected,
                "pattern \(String(decoding: pattern, as: UTF8.self)) text \(String(decoding: text, as: UTF8.self))")
        }
    }

    @Test func longPatternsUseEveryWord() throws {
        // 128 tokens: the accepting state is bit 128, in the third word.
        let questions = try EventPattern(String(repeating: "?", count: 128))
        #expect(questions.matches(String(repeating: "x", count: 128)))
        #expect(!questions.matches(String(repeating: "x", count: 127)))
        let crossing = try EventPattern(
            String(repeating: "a", count: 63) + "*" + String(repeating: "b", count: 63) + "?")
        #expect(crossing.matches(String(repeating: "a", count: 63) + "zz" + String(repeating: "b", count: 63) + "c"))
        #expect(crossing.matches(String(repeating: "a", count: 63) + String(repeating: "b", count: 63) + "c"))
        #expect(!crossing.matches(String(repeating: "a", count: 62) + String(repeating: "b", count: 64) + "c"))
        // The backtracking worst case for the old matcher: many stars, no match.
        let stars = try EventPattern(String(repeating: "*a", count: 63) + "b")
        #expect(!stars.matches(String(repeating: "a", count: 128)))
        #expect(stars.matches(String(repeating: "a", count: 126) + "b"))
    }

    @Test func theMatchCacheIsBoundedByEntries() async throws {
        let bus = EventBus(logger: quietLogger)
        for connection in 0..<1000 {
            bus.subscribe(try EventPattern("*"), owner: .client(connection: connection), handler: .sync { _ in })
        }
        for n in 0..<2000 {
            let published = bus.publishRecording("type-\(n)", payload: JSONValue.null)
            #expect(published.clientSubscribers == 1000)
            #expect(bus.cachedMatchCount <= EventBus.maximumCachedMatches)
        }
        #expect(bus.cachedMatchCount > 0)
    }

    @Test func aTrackedTypeIsMatchedAgainAfterEverySubscriptionChange() async throws {
        let bus = EventBus(logger: quietLogger)
        for _ in 0..<3 { #expect(bus.publishRecording("a.x", payload: JSONValue.null).clientSubscribers == 0) }
        let first = bus.subscribe(try EventPattern("a.*"), owner: .client(connection: 1), handler: .sync { _ in })
        #expect(bus.publishRecording("a.x", payload: JSONValue.null).clientSubscribers == 1)
        bus.subscribe(try EventPattern("*.x"), owner: .client(connection: 2), handler: .sync { _ in })
        #expect(bus.publishRecording("a.x", payload: JSONValue.null).clientSubscribers == 2)
        #expect(bus.hasClientSubscriber(for: "b.x"))  // looked up before its first publish
        #expect(bus.publishRecording("b.x", payload: JSONValue.null).clientSubscribers == 1)
        bus.unsubscribe(first.id)
        #expect(bus.publishRecording("a.x", payload: JSONValue.null).clientSubscribers == 1)
        #expect(bus.statistics().publishedByType == ["a.x": 6, "b.x": 1])
        #expect(bus.statistics().eventsPublished == 7)
    }

    @Test func typesBeyondTheTrackedOnesAreCountedAsOtherAndStillMatched() async throws {
        let bus = EventBus(logger: quietLogger)
        bus.subscribe(try EventPattern("t-*"), owner: .client(connection: 1), handler: .sync { _ in })
        for n in 0..<EventBus.maximumTrackedTypes {
            #expect(bus.publishRecording("t-\(n)", payload: JSONValue.null).clientSubscribers == 1)
        }
        for _ in 0..<2 {
            #expect(bus.publishRecording("t-new", payload: JSONValue.null).clientSubscribers == 1)
            #expect(bus.publishRecording("u-new", payload: JSONValue.null).clientSubscribers == 0)
        }
        bus.subscribe(try EventPattern("u-*"), owner: .client(connection: 2), handler: .sync { _ in })
        #expect(bus.publishRecording("u-new", payload: JSONValue.null).clientSubscribers == 1)
        #expect(bus.publishRecording("t-0", payload: JSONValue.null).clientSubscribers == 1)
        let counts = bus.statistics().publishedByType
        #expect(counts.count == EventBus.maximumTrackedTypes + 1)
        #expect(counts["(other)"] == 5)
        #expect(counts["t-0"] == 2)
        #expect(counts["t-new"] == nil)
        #expect(bus.statistics().eventsPublished == EventBus.maximumTrackedTypes + 6)
    }

    @Test func aSubscriptionMadeWhileATypeIsBeingMatchedIsNotMissed() async throws {
        let bus = EventBus(logger: quietLogger)
        let stop = Task.detached {
            var n = 0
            while !Task.isCancelled {
                n += 1
                let id = bus.subscribe(
                    try EventPattern("churn-\(n)-*"), owner: .client(connection: -n), handler: .sync { _ in })
                bus.unsubscribe(id.id)
            }
        }
        defer { stop.cancel() }
        for connection in 0..<200 {
            bus.subscribe(try EventPattern("t-*"), owner: .client(connection: connection), handler: .sync { _ in })
            let published = bus.publishRecording("t-\(connection)", payload: JSONValue.null)
            #expect(published.clientSubscribers == connection + 1)
        }
    }
}
