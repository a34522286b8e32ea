import Foundation
import Testing

@testable import TradewireTrading

@Suite struct StrategyAgentTests {
    let now = utc("2025-06-13T15:00:00Z")
    let agent = StrategyAgent(logger: quietLogger)

    @Test func contextMatchesTheOriginalDefinitions() throws {
        let closes = linear(25)  // 100 … 102.4
        let context = try #require(MarketContext(bars: makeBars(closes)))
        #expect(context.barsCount == 25)
        #expect(context.currentPrice == 102.4)
        #expect(abs(context.priceChangePct - (102.4 / 102.3 - 1) * 100) < 1e-9)
        #expect(abs(context.ma20 - Indicators.mean(Array(closes.suffix(20)))) < 1e-9)
        #expect(abs(context.ma50 - Indicators.mean(closes)) < 1e-9)  // fewer than 50 bars: all of them
        #expect(context.maTrend == .up)
        let expectedVol =
            Indicators.populationStd(Array(closes.suffix(20))) / Indicators.mean(Array(closes.suffix(20))) * 100
        #expect(abs(context.volatility - expectedVol) < 1e-9)
        #expect(context.volatilityRegime == .low)
        #expect(context.regime == "LOW_VOLATILITY")
        #expect(context.recentTrend == .bullish)
        #expect(context.volumeRatio == 1)
        #expect(context.momentum126 == nil)
        #expect(MarketContext(bars: makeBars([100])) == nil)
        let shortSeries = try #require(MarketContext(bars: makeBars([100, 95])))
        #expect(shortSeries.maTrend == .neutral && shortSeries.volatility == 0)
        #expect(shortSeries.regime == "LOW_VOLATILITY_MOMENTUM")
    }

    @Test func fixedStrategyOnUptrend() throws {
        let agent = StrategyAgent(selector: .fixed(.momentumRotation), logger: quietLogger)
        let output = agent.generate(
            marketData: ["SPY": marketData("SPY", linear(250))], override: nil, idPrefix: "it1", now: now)
        let s = try #require(output.signals.first)
        #expect(output.signals.count == 1 && output.failures.isEmpty)
        #expect(s.id == "it1-SPY")
        #expect(s.action == .buy)
        #expect(s.strategyName == "MomentumRotation")
        #expect(s.timestamp == now)
        #expect(s.price == 124.9)
        // strength (11.22 − 5)/20 → confidence 0.5 + 0.5·strength
        let strength = ((124.9 / 112.3 - 1) * 100 - 5) / 20
        #expect(abs(s.confidence - (0.5 + 0.5 * strength)) < 1e-9)
        #expect(abs(s.stopLoss! - 124.9 * 0.98) < 1e-9)
        let vol = try #require(MarketContext(bars: makeBars(linear(250)))).volatility
        #expect(abs(s.takeProfit! - 124.9 * (1 + max(0.02, vol / 100))) < 1e-9)
        #expect(s.approved == false && s.qty == nil)
        #expect(s.reasoning?.hasPrefix("MomentumRotation (fixed selector") == true)
    }

    @Test func sellLevelsAndHoldHasNone() throws {
        let output = agent.generate(
            marketData: [
                "DOWN": marketData("DOWN", linear(250, start: 200, step: -0.1)),
                "FLAT": marketData("FLAT", [Double](repeating: 100, count: 250)),
            ], override: .trendFollowing, idPrefix: "x", now: now)
        #expect(output.signals.map(\.symbol) == ["DOWN", "FLAT"])
        let down = output.signals[0]
        #expect(down.action == .sell)
        #expect(abs(down.stopLoss! - down.price! * 1.02) < 1e-9)
        #expect(abs(down.takeProfit! - down.price! * 0.98) < 1e-9)  // volatility < 2 %
        #expect(down.confidence >= 0.5 && down.confidence <= 1)
        let flat = output.signals[1]
        #expect(flat.action == .hold)
        #expect(flat.stopLoss == nil && flat.takeProfit == nil)
        #expect(flat.confidence >= 0 && flat.confidence <= 0.5)
        #expect(flat.reasoning?.hasPrefix("TrendFollowing (override") == true)
    }

    @Test func insufficientDataGivesFailures() {
        let output = agent.generate(
            marketData: ["A": marketData("A", linear(20)), "B": marketData("B", linear(60)), "C": marketData("C", [])],
            override: nil, idPrefix: "i", now: now)
        #expect(output.signals.map(\.symbol) == ["B"])
        #expect(
            output.failures == [
                SymbolFailure(symbol: "A", message: "insufficient data: need at least 30 bars, got 20"),
                SymbolFailure(symbol: "C", message: "insufficient data: need at least 30 bars, got 0"),
            ])
        let overridden = agent.generate(
            marketData: ["B": marketData("B", linear(100))], override: .trendFollowing, idPrefix: "i", now: now)
        #expect(overridden.signals.isEmpty)
        #expect(
            overridden.failures == [
                SymbolFailure(symbol: "B", message: "insufficient data: need at least 200 bars, got 100")
            ])
    }

    @Test func confidenceFormulas() {
        #expect(StrategyAgent.confidence(for: .init(action: .buy, strength: 0, reasoning: "")) == 0.5)
        #expect(StrategyAgent.confidence(for: .init(action: .sell, strength: 1, reasoning: "")) == 1)
        #expect(StrategyAgent.confidence(for: .init(action: .buy, strength: 0.4, reasoning: "")) == 0.7)
        #expect(StrategyAgent.confidence(for: .init(action: .hold, strength: 0, reasoning: "")) == 0.5)
        #expect(StrategyAgent.confidence(for: .init(action: .hold, strength: 0.6, reasoning: "")) == 0.2)
        #expect(StrategyAgent.confidence(for: .init(action: .buy, strength: .nan, reasoning: "")) == 0.5)
        #expect(StrategyAgent.confidence(for: .init(action: .hold, strength: 7, reasoning: "")) == 0)
    }

    @Test func regimeSelectorRules() {
        func ctx(
            vol: Double, change: Double = 0.5, ma20: Double = 100, ma50: Double = 100, price: Double = 101,
            trend: MarketContext.Trend = .up, position: Double = 50, bars: Int = 252, mom: Double? = nil
        ) -> MarketContext {
            MarketContext(
                currentPrice: price, priceChangePct: change, volatility: vol, volatilityShort: vol, ma20: ma20,
                ma50: ma50,
                maTrend: trend, pricePositionInRange: position, barsCount: bars, momentum126: mom)
        }
        // 1. trending (ma20 2 % above ma50, close above ma20) — wins even when volatile
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 102, price: 103, bars: 100)) == .relativeStrength)
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 102, price: 103, mom: -5)) == .meanReversion)
        #expect(RegimeSelector.select(ctx(vol: 5, ma20: 102, price: 103, mom: 25)) == .momentumRotation)
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 102, price: 103, mom: 8)) == .trendFollowing)
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 102, price: 103, bars: 150, mom: 8)) == .dualMomentum)
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 98, price: 97, trend: .down, mom: -8)) == .trendFollowing)
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 98, price: 97, trend: .down, mom: 8)) == .meanReversion)
        // close below a rising ma20: not a trend
        #expect(RegimeSelector.select(ctx(vol: 2, ma20: 102, price: 101, trend: .down, mom: 8)) == .dualMomentum)
        // 2. high volatility
        #expect(RegimeSelector.select(ctx(vol: 4, change: 3)) == .volatilityBreakout)
        #expect(RegimeSelector.select(ctx(vol: 4, bars: 40)) == .volatilityBreakout)
        #expect(RegimeSelector.select(ctx(vol: 4)) == .bollingerBands)
        // 3. low volatility
        #expect(RegimeSelector.select(ctx(vol: 0.5, position: 95)) == .breakout)
        #expect(RegimeSelector.select(ctx(vol: 0.5, position: 5)) == .breakout)
        #expect(RegimeSelector.select(ctx(vol: 0.5)) == .meanReversion)
        #expect(RegimeSelector.select(ctx(vol: 0.5, position: 95, bars: 55)) == .meanReversion)
        // 4. normal, no trend
        #expect(RegimeSelector.select(ctx(vol: 2, mom: 12)) == .sectorRotation)
        #expect(RegimeSelector.select(ctx(vol: 2, mom: -12)) == .sectorRotation)
        #expect(RegimeSelector.select(ctx(vol: 2, mom: 4)) == .dualMomentum)
        #expect(RegimeSelector.select(ctx(vol: 2, price: 104, mom: 1)) == .relativeStrength)
        #expect(RegimeSelector.select(ctx(vol: 2, mom: 1)) == .movingAverageEnvelope)
        #expect(RegimeSelector.select(ctx(vol: 2, price: 104, bars: 45)) == .meanReversion)
    }

    @Test func selectorAlwaysMeetsMinimumBars() {
        let provider = SimulatedMarketDataProvider(seed: 11)
        for (i, count) in [30, 45, 55, 70, 127, 150, 199, 200, 252].enumerated() {
            for j in 0..<25 {
                let bars = provider.bars(for: "M\(i)X\(j)", count: count, asOf: now)
                let context = MarketContext(bars: bars)!
                #expect(RegimeSelector.select(context).minimumBars <= count)
            }
        }
    }

    @Test func simulatedUniverseGivesAMixOfActionsAndStrategies() {
        let provider = SimulatedMarketDataProvider(seed: 1)
        var data: [String: MarketData] = [:]
        for i in 0..<300 {
            let symbol = "SYM\(i)"
            data[symbol] = MarketData(symbol: symbol, bars: provider.bars(for: symbol, count: 252, asOf: now))
        }
        let output = agent.generate(marketData: data, override: nil, idPrefix: "mix", now: now)
        #expect(output.signals.count == 300 && output.failures.isEmpty)
        #expect(output.signals.map(\.symbol) == data.keys.sorted())
        let actions = Dictionary(grouping: output.signals, by: \.action).mapValues(\.count)
        #expect((actions[.buy] ?? 0) > 0 && (actions[.sell] ?? 0) > 0 && (actions[.hold] ?? 0) > 0)
        let strategies = Set(output.signals.map(\.strategyName))
        #expect(strategies.count >= 8)
        #expect(output.signals.allSatisfy { $0.confidence >= 0 && $0.confidence <= 1 })
        // deterministic
        let again = agent.generate(marketData: data, override: nil, idPrefix: "mix", now: now)
        #expect(again.signals == output.signals)
    }
}
