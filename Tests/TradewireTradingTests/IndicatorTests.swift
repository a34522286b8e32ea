import Testing

@testable import TradewireTrading

/// Every expected value here was computed by hand (shown in the comments).
@Suite struct IndicatorTests {
    @Test func movingAverages() {
        let x: [Double] = [1, 2, 3, 4, 5]
        #expect(Indicators.sma(x, period: 3) == 4)  // (3+4+5)/3
        #expect(Indicators.sma(x, period: 5) == 3)  // 15/5
        #expect(Indicators.sma(x, period: 2, endingAt: 3) == 2.5)  // (2+3)/2
        #expect(Indicators.sma(x, period: 6).isNaN)
        #expect(Indicators.sma(x, period: 0).isNaN)
        let rolling = Indicators.rollingMean([1, 2, 3, 4], window: 2)
        #expect(rolling[0].isNaN)
        #expect(Array(rolling[1...]) == [1.5, 2.5, 3.5])
        #expect(Indicators.mean([Double]()).isNaN)
    }

    @Test func standardDeviations() {
        let x: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]  // mean 5, squared deviations sum 32
        #expect(Indicators.populationStd(x) == 2)  // √(32/8)
        #expect(abs(Indicators.sampleStd(x) - 2.138089935299395) < 1e-12)  // √(32/7)
        #expect(Indicators.sampleStd([3]).isNaN)
        #expect(Indicators.populationStd([3]) == 0)
        // windows [1,2,4]: SS 42/9 → √(7/3); [2,4,7]: SS 114/9 → √(19/3)
        let rolling = Indicators.rollingSampleStd([1, 2, 4, 7], window: 3)
        #expect(rolling[0].isNaN && rolling[1].isNaN)
        #expect(abs(rolling[2] - (7.0 / 3).squareRoot()) < 1e-12)
        #expect(abs(rolling[3] - (19.0 / 3).squareRoot()) < 1e-12)
        #expect(Indicators.rollingSampleStd([5, 5, 5, 5], window: 2).dropFirst().allSatisfy { $0 == 0 })
    }

    @Test func rsiUsesSimpleMeans() {
        // diffs +1 −1 +2 +1; last 3: −1, +2, +1 → gains 3/3 = 1, losses 1/3 → RS 3 → 100 − 100/4 = 75
        #expect(abs(Indicators.rsi([10, 11, 10, 12, 13], period: 3) - 75) < 1e-12)
        // last 4: +1 −1 +2 +1 → gains 4/4, losses 1/4 → RS 4 → 80
        #expect(abs(Indicators.rsi([10, 11, 10, 12, 13], period: 4) - 80) < 1e-12)
        #expect(Indicators.rsi([1, 2, 3, 4], period: 3) == 100)  // no losses
        #expect(Indicators.rsi([4, 3, 2, 1], period: 3) == 0)  // no gains
        #expect(Indicators.rsi([5, 5, 5, 5], period: 3).isNaN)  // 0/0
        #expect(Indicators.rsi([1, 2, 3], period: 3).isNaN)  // needs period + 1 closes
    }

    @Test func averageTrueRange() {
        let highs: [Double] = [10, 11, 13, 12, 9]
        let lows: [Double] = [8, 9, 11, 9, 7]
        let closes: [Double] = [9, 10.5, 12, 9.5, 8]
        // TR: 2 (h−l), max(2, 2, 0) = 2, max(2, 2.5, 0.5) = 2.5, max(3, 0, 3) = 3, max(2, 0.5, 2.5) = 2.5
        #expect(Indicators.trueRanges(highs: highs, lows: lows, closes: closes) == [2, 2, 2.5, 3, 2.5])
        #expect(abs(Indicators.atr(highs: highs, lows: lows, closes: closes, period: 3) - 8.0 / 3) < 1e-12)
        #expect(Indicators.atr(highs: highs, lows: lows, closes: closes, period: 5) == 2.4)  // 12/5
        #expect(Indicators.atr(highs: highs, lows: lows, closes: closes, period: 6).isNaN)
    }

    @Test func donchianChannel() {
        let highs: [Double] = [10, 11, 13, 12, 9]
        let lows: [Double] = [8, 9, 11, 9, 7]
        let previous = Indicators.donchian(highs: highs, lows: lows, period: 3)  // bars 1…3
        #expect(previous.upper == 13 && previous.lower == 9)
        let including = Indicators.donchian(highs: highs, lows: lows, period: 3, excludingLast: false)  // bars 2…4
        #expect(including.upper == 13 && including.lower == 7)
        #expect(Indicators.donchian(highs: highs, lows: lows, period: 5).upper.isNaN)
    }

    @Test func changesAndReturns() {
        #expect(abs(Indicators.pctChange([100, 110, 121], periods: 1) - 0.1) < 1e-12)  // 121/110 − 1
        #expect(abs(Indicators.pctChange([100, 110, 121], periods: 2) - 0.21) < 1e-12)  // 121/100 − 1
        #expect(Indicators.pctChange([100, 110, 121], periods: 3).isNaN)
        let r = Indicators.returns([100, 110, 99])
        #expect(r.count == 2)
        #expect(abs(r[0] - 0.1) < 1e-12 && abs(r[1] + 0.1) < 1e-12)  // 110/100 − 1, 99/110 − 1
        #expect(Indicators.returns([5]).isEmpty)
    }

    @Test func maxDrawdown() {
        // cum 1.1, 0.88, 0.968; peak 1.1 → 0.88/1.1 − 1 = −0.2
        #expect(abs(Indicators.maxDrawdown(returns: [0.1, -0.2, 0.1]) - 0.2) < 1e-12)
        // cum 1.05, 0.945, 0.8505, 1.10565; peak 1.05 → 0.8505/1.05 − 1 = −0.19
        #expect(abs(Indicators.maxDrawdown(returns: [0.05, -0.1, -0.1, 0.3]) - 0.19) < 1e-12)
        #expect(Indicators.maxDrawdown(returns: [0.01, 0.02]) == 0)
        #expect(Indicators.maxDrawdown(returns: []) == 0)
    }

    @Test func sharpeRatio() {
        // mean 0.02, sample std 0.01 → 2·√252
        #expect(abs(Indicators.sharpe(returns: [0.01, 0.02, 0.03]) - 2 * 252.0.squareRoot()) < 1e-9)
        // mean −0.01, sample std √(0.0002/1)… for [0, −0.02]: mean −0.01, std 0.0141421 → −0.7071·√252
        #expect(abs(Indicators.sharpe(returns: [0, -0.02]) - (-0.5.squareRoot() * 252.0.squareRoot())) < 1e-9)
        #expect(Indicators.sharpe(returns: [0.01, 0.01, 0.01]) == 0)  // zero deviation
        #expect(Indicators.sharpe(returns: [0.01]).isNaN)
    }
}
