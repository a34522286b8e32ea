import Foundation
import Testing

@testable import TradewireTrading

@Suite struct CSVProviderTests {
    var provider: CSVMarketDataProvider { CSVMarketDataProvider(directory: fixturesDirectory) }

    @Test func readsMixedCaseHeaderWithExtraColumn() async throws {
        let md = try await provider.marketData(for: "TEST", bars: 252, asOf: utc("2024-06-01"))
        #expect(md.symbol == "TEST")
        #expect(md.timeframe == "1Day")
        #expect(md.bars.count == 40)
        #expect(
            md.bars[0]
                == Bar(timestamp: utc("2024-01-02"), open: 99.75, high: 101, low: 98.75, close: 100, volume: 1_000_000))
        #expect(
            md.bars[39]
                == Bar(
                    timestamp: utc("2024-02-26"), open: 119.25, high: 120.5, low: 118.25, close: 119.5,
                    volume: 1_039_000))
        #expect(zip(md.bars, md.bars.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp })
    }

    @Test func lastBarsUpToAsOfDay() async throws {
        let last10 = try await provider.marketData(for: "TEST", bars: 10, asOf: utc("2024-06-01"))
        #expect(last10.bars.count == 10)
        #expect(last10.bars.last?.close == 119.5)
        #expect(last10.bars.first?.close == 115)  // row 31 of 40: 100 + 30·0.5
        // asOf in the middle of a day includes that day's row; rows after it are cut
        let mid = try await provider.marketData(for: "TEST", bars: 5, asOf: utc("2024-01-09T15:00:00Z"))
        #expect(
            mid.bars.map(\.timestamp)
                == ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"].map(utc))
        let none = try await provider.marketData(for: "TEST", bars: 5, asOf: utc("2023-12-31"))
        #expect(none.bars.isEmpty)
    }

    @Test func anyColumnOrderRFC3339AndUnsortedRows() async throws {
        let md = try await provider.marketData(for: "ORDER", bars: 252, asOf: utc("2024-02-01"))
        #expect(md.bars.map(\.close) == [10.5, 10.7, 10.9])
        #expect(
            md.bars[0] == Bar(timestamp: utc("2024-01-02"), open: 10, high: 11, low: 9.5, close: 10.5, volume: 1000))
    }

    @Test func missingFileError() async throws {
        do {
            _ = try await provider.marketData(for: "NOPE", bars: 10, asOf: utc("2024-06-01"))
            Issue.record("expected an error")
        } catch let error as CSVError {
            guard case .fileNotFound(let symbol, let path) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(symbol == "NOPE")
            #expect(path.hasSuffix("/NOPE.csv"))
            #expect(error.description.contains("no CSV file for NOPE"))
        }
    }

    @Test func badRowErrorNamesTheLine() async throws {
        do {
            _ = try await provider.marketData(for: "BAD", bars: 10, asOf: utc("2024-06-01"))
            Issue.record("expected an error")
        } catch let error as CSVError {
            guard case .badRow(let path, let line, let message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(path.hasSuffix("BAD.csv"))
            #expect(line == 5)
            #expect(message == "invalid Close \"null\"")
            #expect(error.description.hasSuffix("BAD.csv:5: invalid Close \"null\""))
        }
    }

    @Test func parseErrors() throws {
        #expect(throws: CSVError.missingColumns(path: "x.csv", columns: ["Volume"])) {
            try CSVMarketDataProvider.parse("Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n", path: "x.csv")
        }
        #expect(
            throws: CSVError.badRow(
                path: "x.csv", line: 3, message: "invalid date \"02/01/2024\" (expected YYYY-MM-DD or RFC 3339)")
        ) {
            try CSVMarketDataProvider.parse(
                "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n02/01/2024,1,2,0.5,1.5,10\n", path: "x.csv"
            )
        }
        #expect(throws: CSVError.badRow(path: "x.csv", line: 2, message: "expected at least 6 fields, got 5")) {
            try CSVMarketDataProvider.parse("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5\n", path: "x.csv")
        }
        #expect(throws: CSVError.badRow(path: "x.csv", line: 2, message: "Close must be positive, got -1")) {
            try CSVMarketDataProvider.parse(
                "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,-1,10\n", path: "x.csv")
        }
        let quoted = try CSVMarketDataProvider.parse(
            "\u{FEFF}\"Date\",\"Open\",\"High\",\"Low\",\"Close\",\"Volume\"\n\"2024-01-02\",\"1\",\"2\",\"0.5\",\"1.5\",\"10\"\n",
            path: "q.csv")
        #expect(quoted == [Bar(timestamp: utc("2024-01-02"), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10)])
    }

    @Test func providerSpecs() {
        #expect(DataProviderSpec(parsing: "simulated") == .simulated)
        #expect(DataProviderSpec(parsing: "csv:/data/bars") == .csv(directory: "/data/bars"))
        #expect(DataProviderSpec(parsing: "csv:") == nil)
        #expect(DataProviderSpec(parsing: "yahoo") == nil)
        #expect(DataProviderSpec.csv(directory: "d").description == "csv:d")
        #expect(DataProviderSpec.simulated.makeProvider(seed: 1).name == "simulated")
        #expect(DataProviderSpec.csv(directory: "d").makeProvider(seed: 1).name == "csv:d")
    }
}

@Suite struct SimulatedProviderTests {
    let asOf = utc("2025-06-13T18:00:00Z")  // a Friday

    @Test func deterministicInSymbolSeedAndDay() {
        let a = SimulatedMarketDataProvider(seed: 42)
        let first = a.bars(for: "AAPL", count: 252, asOf: asOf)
        #expect(first.count == 252)
        #expect(
            first
                == SimulatedMarketDataProvider(seed: 42).bars(
                    for: "AAPL", count: 252, asOf: asOf.addingTimeInterval(3600)))
        #expect(first != SimulatedMarketDataProvider(seed: 43).bars(for: "AAPL", count: 252, asOf: asOf))
        #expect(first != a.bars(for: "MSFT", count: 252, asOf: asOf))
        #expect(
            first.map(\.close)
                != a.bars(for: "AAPL", count: 252, asOf: asOf.addingTimeInterval(3 * 86_400)).map(\.close))
    }

    @Test func windowsOverlapExactly() {
        let p = SimulatedMarketDataProvider(seed: 7)
        let monday = p.bars(for: "SPY", count: 100, asOf: utc("2025-06-16"))
        let friday = p.bars(for: "SPY", count: 100, asOf: utc("2025-06-13"))
        #expect(Array(monday.dropFirst(0).prefix(99)) == Array(friday.dropFirst()))
        let long = p.bars(for: "SPY", count: 300, asOf: utc("2025-06-13"))
        #expect(Array(long.suffix(100)) == friday)
    }

    @Test func weekdayTimestampsEndingOnAsOf() {
        let bars = SimulatedMarketDataProvider(seed: 1).bars(for: "QQQ", count: 30, asOf: asOf)
        #expect(bars.last?.timestamp == utc("2025-06-13"))
        for bar in bars {
            let weekday = (Int(bar.timestamp.timeIntervalSince1970 / 86_400) + 3) % 7  // 0 = Monday
            #expect(weekday < 5)
        }
        #expect(zip(bars, bars.dropFirst()).allSatisfy { $0.timestamp < $1.timestamp })
        // a Sunday ends on the Friday before
        let sunday = SimulatedMarketDataProvider(seed: 1).bars(for: "QQQ", count: 30, asOf: utc("2025-06-15T12:00:00Z"))
        #expect(sunday == bars)
    }

    @Test func realisticOHLCV() {
        let p = SimulatedMarketDataProvider(seed: 2024)
        var sawHighVolatility = false
        for i in 0..<60 {
            let bars = p.bars(for: "S\(i)", count: 252, asOf: asOf)
            #expect(bars.count == 252)
            for bar in bars {
                #expect(bar.high >= max(bar.open, bar.close))
                #expect(bar.low <= min(bar.open, bar.close))
                #expect(bar.low > 0)
                #expect(bar.volume > 0 && bar.volume == bar.volume.rounded())
            }
            let r = Indicators.returns(bars.map(\.close))
            let dailyVol = Indicators.sampleStd(r)
            #expect(dailyVol > 0.002 && dailyVol < 0.1)
            if dailyVol > 0.025 { sawHighVolatility = true }
        }
        #expect(sawHighVolatility)
    }

    @Test func zeroBars() async throws {
        let md = try await SimulatedMarketDataProvider(seed: 1).marketData(for: "X", bars: 0, asOf: asOf)
        #expect(md.bars.isEmpty)
    }
}
