import Foundation
import Logging

/// The data stage's output.
public struct DataFetchResult: Sendable {
    /// Keyed by the normalised (upper-case) symbol.
    public var marketData: [String: MarketData]
    /// Invalid symbols and symbols the provider failed on, in input order.
    public var failures: [SymbolFailure]

    public init(marketData: [String: MarketData] = [:], failures: [SymbolFailure] = []) {
        self.marketData = marketData
        self.failures = failures
    }
}

/// Fetches daily bars for a list of symbols from a ``MarketDataProvider``.
///
/// Symbols are validated and upper-cased (``SymbolValidation``), de-duplicated, fetched
/// concurrently, and each symbol's failure is isolated: it becomes a ``SymbolFailure``
/// and never affects the others. Results are cached for `cacheTTLSeconds`, keyed by
/// (symbol, bars, UTC day of `asOf`), at most 1000 entries; the cache is shared by copies of
/// the agent.
public struct DataAgent: Sendable {
    public let provider: any MarketDataProvider
    public let barsPerSymbol: Int
    public let cache: MarketDataCache
    let logger: Logger

    public init(
        provider: any MarketDataProvider, barsPerSymbol: Int = 252, cacheTTLSeconds: Double = 60, logger: Logger
    ) {
        self.provider = provider
        self.barsPerSymbol = barsPerSymbol
        self.cache = MarketDataCache(ttlSeconds: cacheTTLSeconds)
        self.logger = logger
    }

    /// Fetches every symbol (see the type's documentation). A provider result without bars
    /// counts as a failure ("no market data").
    public func fetch(symbols: [String], asOf: Date) async -> DataFetchResult {
        let day = TradingCalendar.utcDay(asOf)
        let bars = barsPerSymbol
        // (input position, failure) for invalid symbols; unique valid symbols with their first position.
        var failures: [(Int, SymbolFailure)] = []
        var unique: [(position: Int, symbol: String)] = []
        var seen = Set<String>()
        for (position, raw) in symbols.enumerated() {
            do {
                let symbol = try SymbolValidation.normalize(raw)
                if seen.insert(symbol).inserted { unique.append((position, symbol)) }
            } catch {
                failures.append((position, SymbolFailure(symbol: raw, message: error.message)))
            }
        }

        var result = DataFetchResult()
        result.marketData.reserveCapacity(unique.count)
        var misses: [(position: Int, symbol: String)] = []
        for entry in unique {
            if let cached = cache.value(for: .init(symbol: entry.symbol, bars: bars, day: day)) {
                result.marketData[entry.symbol] = cached
            } else {
                misses.append(entry)
            }
        }
        let hits = result.marketData.count

        let provider = self.provider
        // A struct, not a tuple, as the child result: a tuple result crashed the release build's
        // task group (swift_taskGroup_wait_next_throwing copying the tuple) on Swift 6.3.1.
        let fetched = await withTaskGroup(of: FetchOutcome.self) { group in
            for entry in misses {
                group.addTask {
                    do {
                        let data = try await provider.marketData(for: entry.symbol, bars: bars, asOf: asOf)
                        return FetchOutcome(position: entry.position, symbol: entry.symbol, result: .success(data))
                    } catch {
                        return FetchOutcome(position: entry.position, symbol: entry.symbol, result: .failure(error))
                    }
                }
            }
            var collected: [FetchOutcome] = []
            collected.reserveCapacity(misses.count)
            for await item in group { collected.append(item) }
            return collected
        }

        for item in fetched {
            let (position, symbol, outcome) = (item.position, item.symbol, item.result)
            switch outcome {
            case .success(var data):
                guard !data.bars.isEmpty else {
                    failures.append((position, SymbolFailure(symbol: symbol, message: "no market data (0 bars)")))
                    logger.warning("data.symbol_failed", metadata: ["symbol": "\(symbol)", "error": "no bars"])
                    continue
                }
                data.symbol = symbol
                cache.store(data, for: .init(symbol: symbol, bars: bars, day: day))
                result.marketData[symbol] = data
            case .failure(let error):
                let message = String(describing: error)
                failures.append((position, SymbolFailure(symbol: symbol, message: message)))
                logger.warning("data.symbol_failed", metadata: ["symbol": "\(symbol)", "error": "\(message)"])
            }
        }
        result.failures = failures.sorted { $0.0 < $1.0 }.map(\.1)
        logger.debug(
            "data.fetched",
            metadata: [
                "provider": "\(provider.name)", "symbols": "\(result.marketData.count)", "cache.hits": "\(hits)",
                "failures": "\(result.failures.count)",
            ])
        return result
    }
}

/// One symbol's fetch, as a child task reports it.
struct FetchOutcome: Sendable {
    let position: Int
    let symbol: String
    let result: Result<MarketData, any Error>
}
