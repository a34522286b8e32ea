import Foundation
import Synchronization
import Testing

@testable import TradewireTrading

/// Counts calls; fails for the symbols it is told to.
final class CountingProvider: MarketDataProvider {
    struct Failure: Error, CustomStringConvertible {
        let symbol: String
        var description: String { "feed down for \(symbol)" }
    }

    let calls = Mutex<[String]>([])
    let failing: Set<String>
    let empty: Set<String>
    var name: String { "counting" }

    init(failing: Set<String> = [], empty: Set<String> = []) {
        self.failing = failing
        self.empty = empty
    }

    var callCount: Int { calls.withLock { $0.count } }

    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        calls.withLock { $0.append(symbol) }
        if failing.contains(symbol) { throw Failure(symbol: symbol) }
        if empty.contains(symbol) { return MarketData(symbol: symbol, bars: []) }
        return MarketData(symbol: "ignored", bars: makeBars(linear(bars), end: asOf))
    }
}

@Suite struct DataAgentTests {
    let asOf = utc("2025-06-13T15:00:00Z")

    @Test func invalidSymbolsAreIsolatedAndOthersUpperCased() async {
        let provider = CountingProvider()
        let agent = DataAgent(provider: provider, barsPerSymbol: 40, logger: quietLogger)
        let result = await agent.fetch(symbols: ["aapl", "bad sym!", "MSFT"], asOf: asOf)
        #expect(result.marketData.keys.sorted() == ["AAPL", "MSFT"])
        #expect(result.marketData["AAPL"]?.symbol == "AAPL")
        #expect(result.marketData["AAPL"]?.bars.count == 40)
        #expect(result.failures.count == 1)
        #expect(result.failures.first?.symbol == "bad sym!")
        #expect(result.failures.first?.message.contains("invalid symbol") == true)
        #expect(provider.callCount == 2)
    }

    @Test func oneFailingSymbolDoesNotAffectOthers() async {
        let provider = CountingProvider(failing: ["GOOGL"], empty: ["EMPTY"])
        let agent = DataAgent(provider: provider, barsPerSymbol: 30, logger: quietLogger)
        let result = await agent.fetch(symbols: ["AAPL", "GOOGL", "EMPTY", "MSFT", "SPY"], asOf: asOf)
        #expect(result.marketData.keys.sorted() == ["AAPL", "MSFT", "SPY"])
        #expect(
            result.failures == [
                SymbolFailure(symbol: "GOOGL", message: "feed down for GOOGL"),
                SymbolFailure(symbol: "EMPTY", message: "no market data (0 bars)"),
            ])
    }

    @Test func duplicatesFetchedOnce() async {
        let provider = CountingProvider()
        let agent = DataAgent(provider: provider, logger: quietLogger)
        let result = await agent.fetch(symbols: ["aapl", "AAPL", " aapl "], asOf: asOf)
        #expect(result.marketData.count == 1)
        #expect(result.failures.isEmpty)
        #expect(provider.callCount == 1)
    }

    @Test func cacheHitsWithinTTLAndDay() async {
        let provider = CountingProvider()
        let agent = DataAgent(provider: provider, barsPerSymbol: 50, cacheTTLSeconds: 60, logger: quietLogger)
        let first = await agent.fetch(symbols: ["AAPL", "MSFT"], asOf: asOf)
        let copy = agent  // copies share the cache
        let second = await copy.fetch(symbols: ["MSFT", "AAPL"], asOf: asOf.addingTimeInterval(60))
        #expect(provider.callCount == 2)
        #expect(first.marketData == second.marketData)
        // another UTC day is another key
        _ = await agent.fetch(symbols: ["AAPL"], asOf: asOf.addingTimeInterval(86_400))
        #expect(provider.callCount == 3)
        // failures are not cached
        let failing = CountingProvider(failing: ["X"])
        let agent2 = DataAgent(provider: failing, logger: quietLogger)
        _ = await agent2.fetch(symbols: ["X"], asOf: asOf)
        _ = await agent2.fetch(symbols: ["X"], asOf: asOf)
        #expect(failing.callCount == 2)
    }

    @Test func zeroTTLDisablesTheCache() async {
        let provider = CountingProvider()
        let agent = DataAgent(provider: provider, cacheTTLSeconds: 0, logger: quietLogger)
        _ = await agent.fetch(symbols: ["AAPL"], asOf: asOf)
        _ = await agent.fetch(symbols: ["AAPL"], asOf: asOf)
        #expect(provider.callCount == 2)
    }

    @Test func cacheIsBounded() {
        let cache = MarketDataCache(ttlSeconds: 60, maxEntries: 3)
        for i in 0..<5 {
            cache.store(MarketData(symbol: "S\(i)", bars: []), for: .init(symbol: "S\(i)", bars: 1, day: 0))
        }
        #expect(cache.count == 3)
        #expect(cache.value(for: .init(symbol: "S0", bars: 1, day: 0)) == nil)
        #expect(cache.value(for: .init(symbol: "S4", bars: 1, day: 0))?.symbol == "S4")
    }

    @Test func cacheEvictsOldestFirstInAmortisedConstantTime() {
        // 20 000 stores into 1 000 slots: the old code filtered and sorted the map on each one.
        let cache = MarketDataCache(ttlSeconds: 60, maxEntries: 1_000)
        let empty = MarketData(symbol: "", bars: [])
        for i in 0..<20_000 { cache.store(empty, for: .init(symbol: "S\(i)", bars: 1, day: 0)) }
        #expect(cache.count == 1_000)
        #expect(cache.value(for: .init(symbol: "S19999", bars: 1, day: 0)) != nil)
        #expect(cache.value(for: .init(symbol: "S19000", bars: 1, day: 0)) != nil)
        #expect(cache.value(for: .init(symbol: "S18999", bars: 1, day: 0)) == nil)
        #expect(cache.value(for: .init(symbol: "S0", bars: 1, day: 0)) == nil)
        // Storing a key again makes it the newest.
        let small = MarketDataCache(ttlSeconds: 60, maxEntries: 3)
        for name in ["A", "B", "C", "A", "D"] {
            small.store(MarketData(symbol: name, bars: []), for: .init(symbol: name, bars: 1, day: 0))
        }
        #expect(small.count == 3)
        #expect(small.value(for: .init(symbol: "B", bars: 1, day: 0)) == nil)
        for kept in ["A", "C", "D"] {
            #expect(small.value(for: .init(symbol: kept, bars: 1, day: 0))?.symbol == kept)
        }
        small.removeAll()
        #expect(small.count == 0)
    }

    @Test func expiredEntriesAreDroppedFirst() async throws {
        let cache = MarketDataCache(ttlSeconds: 0.05, maxEntries: 3)
        cache.store(MarketData(symbol: "OLD", bars: []), for: .init(symbol: "OLD", bars: 1, day: 0))
        try await Task.sleep(for: .milliseconds(80))
        cache.store(MarketData(symbol: "NEW", bars: []), for: .init(symbol: "NEW", bars: 1, day: 0))
        #expect(cache.count == 1)
        #expect(cache.value(for: .init(symbol: "NEW", bars: 1, day: 0))?.symbol == "NEW")
    }

    @Test func simulatedProviderThroughTheAgent() async {
        let agent = DataAgent(provider: SimulatedMarketDataProvider(seed: 9), logger: quietLogger)
        let result = await agent.fetch(symbols: ["SPY", "QQQ", "IWM"], asOf: asOf)
        #expect(result.marketData.count == 3)
        #expect(result.marketData.values.allSatisfy { $0.bars.count == 252 })
    }
}
