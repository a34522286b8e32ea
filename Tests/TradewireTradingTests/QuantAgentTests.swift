import Testing

@testable import TradewireTrading

@Suite struct QuantAgentTests {
    let quant = QuantAgent(logger: quietLogger)

    func validated(_ closes: [Double], confidence: Double = 0.8, agent: QuantAgent? = nil) -> TradingSignal {
        let agent = agent ?? quant
        return agent.validate(
            [signal("SPY", .buy, confidence: confidence)], marketData: ["SPY": marketData("SPY", closes)])[0]
    }

    @Test func defaultsAndCustomThresholds() {
        #expect(quant.minSharpe == 0.8 && quant.maxDrawdown == 0.15)
        let custom = QuantAgent(minSharpe: 1.5, maxDrawdown: 0.08, logger: quietLogger)
        #expect(custom.minSharpe == 1.5 && custom.maxDrawdown == 0.08)
    }

    @Test func positiveTrendKeepsConfidence() {
        // steady uptrend with a small zig-zag: positive mean, high Sharpe, tiny drawdown
        let s = validated(zigzag(100, drift: 0.5, amplitude: 0.2))
        #expect(s.confidence >= 0.8 * 0.8)
        #expect(s.confidence == 0.8)
        #expect(s.reasoning?.contains("quant: Sharpe") == true)
    }

    @Test func steadyDeclineLowersConfidence() {
        let s = validated(linear(100, start: 150, step: -0.5))
        // mean ≤ 0 → ×0.8; Sharpe < 0 → ×0.5; drawdown 33 % > 15 % → ×0.15/0.33
        #expect(s.confidence < 0.75 * 0.8)
        let closes = linear(100, start: 150, step: -0.5)
        let dd = Indicators.maxDrawdown(returns: Indicators.returns(closes))
        #expect(abs(s.confidence - 0.8 * 0.8 * 0.5 * (0.15 / dd)) < 1e-12)
        #expect(s.reasoning?.contains("non-positive mean return ×0.8") == true)
    }

    @Test func volatileSeriesNeverRaisesConfidence() {
        // calm, then a burst of wide swings at the end: the volatility regime factor applies
        let calm = zigzag(80, drift: 0.05, amplitude: 0.05)
        let burst = (0..<20).map { i in 104 + (i % 2 == 0 ? 6.0 : -6.0) }
        let s = validated(calm + burst)
        #expect(s.confidence <= 0.8)
        #expect(s.reasoning?.contains("volatility regime ×0.7") == true)
    }

    @Test func lowSharpeAndHighDrawdownEachScaleDown() {
        // flat-ish with noise: Sharpe near 0 → ×max(0.5, sharpe/0.8)
        let noisy = zigzag(60, drift: 0.001, amplitude: 1)
        let low = validated(noisy, confidence: 1)
        #expect(low.confidence <= 0.75 && low.confidence >= 0)
        // rise, crash 30 %, recover: drawdown > 15 %
        let crash =
            linear(40, start: 100, step: 1) + linear(20, start: 139, step: -2.1) + linear(40, start: 97, step: 1.5)
        let deep = validated(crash, confidence: 1)
        #expect(deep.confidence <= 0.75)
        #expect(deep.reasoning?.contains("max drawdown") == true)
    }

    @Test func clampsIntoUnitInterval() {
        let up = zigzag(100, drift: 0.5, amplitude: 0.2)
        #expect(validated(up, confidence: 1.5).confidence == 1)
        #expect(validated(up, confidence: -0.5).confidence == 0)
    }

    @Test func fewReturnsSkipSharpeAndDrawdown() {
        let s = validated(linear(20, start: 100, step: -1), confidence: 0.9)
        #expect(abs(s.confidence - 0.72) < 1e-12)  // only the mean-return factor
        #expect(s.reasoning?.contains("19 returns < 30") == true)
    }

    @Test func noDataPassesThroughUnchangedAndCountIsKept() {
        let signals = [
            signal("AAA", .buy, confidence: 0.9), signal("NODATA", .sell, confidence: 0.6),
            signal("BBB", .hold, confidence: 0.4),
        ]
        let data = [
            "AAA": marketData("AAA", linear(100, start: 150, step: -0.5)),
            "BBB": marketData("BBB", zigzag(100, drift: 0.5, amplitude: 0.2)),
            "ONE": marketData("ONE", [100]),
        ]
        let out = quant.validate(signals, marketData: data)
        #expect(out.count == 3)
        #expect(out.map(\.symbol) == ["AAA", "NODATA", "BBB"])
        #expect(out[1] == signals[1])
        #expect(out[0].confidence < 0.9)
        let one = signal("ONE", .buy)
        #expect(quant.validate([one], marketData: data) == [one])
        #expect(quant.validate([], marketData: data).isEmpty)
    }
}
