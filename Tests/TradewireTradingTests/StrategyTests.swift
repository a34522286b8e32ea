import Testing

@testable import TradewireTrading

@Suite struct StrategyTests {
    // MARK: minimum bars

    @Test(arguments: StrategyName.allCases)
    func minimumBarsErrorMessage(name: StrategyName) throws {
        let expected: [StrategyName: Int] = [
            .trendFollowing: 200, .momentumRotation: 126, .meanReversion: 30, .breakout: 60, .volatilityBreakout: 30,
            .relativeStrength: 50, .sectorRotation: 126, .dualMomentum: 126, .movingAverageEnvelope: 50,
            .bollingerBands: 50,
        ]
        let need = try #require(expected[name])
        #expect(name.minimumBars == need)
        let strategy = name.makeStrategy()
        let bars = makeBars(linear(need - 1))
        #expect(throws: StrategyError.insufficientData(need: need, got: need - 1)) { try strategy.evaluate(bars) }
        do {
            _ = try strategy.evaluate(bars)
        } catch {
            #expect(error.message == "Insufficient data: need at least \(need) bars, got \(need - 1)")
        }
        // Exactly the minimum evaluates.
        _ = try strategy.evaluate(makeBars(linear(need)))
    }

    // MARK: TrendFollowing

    @Test func trendFollowingLinearUptrendBuys() throws {
        let e = try TrendFollowing().evaluate(makeBars(linear(250)))
        #expect(e.action == .buy)
        // close 124.9, SMA200 = 100 + 0.1·149.5 = 114.95 → gap 8.656 % → strength 0.8656
        #expect(abs(e.strength - (124.9 / 114.95 - 1) / 0.10) < 1e-9)
        #expect(e.reasoning.contains("SMA200 114.95"))
    }

    @Test func trendFollowingSellsAndHolds() throws {
        #expect(try TrendFollowing().evaluate(makeBars(linear(250, start: 200, step: -0.1))).action == .sell)
        // 150 bars at 110, 49 at 90, then 120: SMA200 105.15 < 120 but SMA50 90.6 < SMA200 → HOLD
        let closes = [Double](repeating: 110, count: 150) + [Double](repeating: 90, count: 49) + [120]
        let e = try TrendFollowing().evaluate(makeBars(closes))
        #expect(e.action == .hold)
        #expect(e.strength == 0)  // SMA50 is 13.8 % below SMA200: far from a golden cross
        #expect(throws: StrategyError.self) { try TrendFollowing().evaluate(makeBars(linear(50))) }
    }

    // MARK: momentum family

    @Test func momentumRotation() throws {
        // 126-bar momentum on 100 + 0.1·i (250 bars): 124.9 / 112.3 − 1 = 11.2 % > 5 %
        let up = try MomentumRotation().evaluate(makeBars(linear(250)))
        #expect(up.action == .buy)
        #expect(abs(up.strength - ((124.9 / 112.3 - 1) * 100 - 5) / 20) < 1e-9)
        #expect(try MomentumRotation().evaluate(makeBars(linear(200, start: 150, step: -0.1))).action == .sell)
        // +2 % over 126 bars: between 0 and 5 → HOLD
        let flat = [Double](repeating: 100, count: 100) + [Double](repeating: 102, count: 100)
        #expect(try MomentumRotation().evaluate(makeBars(flat)).action == .hold)
        // exactly 126 bars: no 126-bar change yet → HOLD (NaN)
        let nan = try MomentumRotation().evaluate(makeBars(linear(126)))
        #expect(nan.action == .hold && nan.strength == 0)
    }

    @Test func sectorRotation() throws {
        // 100 + 0.2·i: 149.8 / 124.6 − 1 = 20.2 % > 10 %
        #expect(try SectorRotation().evaluate(makeBars(linear(250, step: 0.2))).action == .buy)
        // +7 % over 126 bars: a HOLD here (threshold 10 %) and a BUY for MomentumRotation (5 %).
        let seven = [Double](repeating: 100, count: 100) + [Double](repeating: 107, count: 100)
        #expect(try SectorRotation().evaluate(makeBars(seven)).action == .hold)
        #expect(try MomentumRotation().evaluate(makeBars(seven)).action == .buy)
        #expect(try SectorRotation().evaluate(makeBars(linear(200, start: 150, step: -0.1))).action == .sell)
    }

    @Test func dualMomentum() throws {
        #expect(try DualMomentum().evaluate(makeBars(linear(200))).action == .buy)
        #expect(try DualMomentum().evaluate(makeBars(linear(200, start: 150, step: -0.1))).action == .sell)
        // rising over 126 bars but the last close under its SMA50 → SELL (either negative)
        let dip = linear(199) + [110]
        let e = try DualMomentum().evaluate(makeBars(dip))
        #expect(e.action == .sell)
        #expect(e.reasoning.contains("relative to SMA50 -"))
        let flat = try DualMomentum().evaluate(makeBars([Double](repeating: 50, count: 150)))
        #expect(flat.action == .hold)
    }

    // MARK: mean reversion family

    @Test func meanReversionRSI() throws {
        #expect(try MeanReversion().evaluate(makeBars(linear(40, start: 100, step: -0.5))).action == .buy)  // RSI 0
        #expect(try MeanReversion().evaluate(makeBars(linear(40))).action == .sell)  // RSI 100
        let e = try MeanReversion().evaluate(makeBars(zigzag(40, drift: 0, amplitude: 1)))  // RSI 50
        #expect(e.action == .hold)
        #expect(abs(e.strength) < 1e-9)  // 20 points from both triggers
        let flat = try MeanReversion().evaluate(makeBars([Double](repeating: 10, count: 40)))  // RSI NaN
        #expect(flat.action == .hold && flat.strength == 0)
    }

    @Test func movingAverageEnvelope() throws {
        let base = [Double](repeating: 100, count: 59)
        // MA20 = (19·100 + 95)/20 = 99.75, lower 97.256 → BUY
        #expect(try MovingAverageEnvelope().evaluate(makeBars(base + [95])).action == .buy)
        // MA20 = 100.25, upper 102.756 → SELL
        #expect(try MovingAverageEnvelope().evaluate(makeBars(base + [105])).action == .sell)
        #expect(try MovingAverageEnvelope().evaluate(makeBars(base + [101])).action == .hold)
    }

    @Test func bollingerBands() throws {
        let base = zigzag(59, drift: 0, amplitude: 1)  // 101, 99, 101, …
        // last 20: 10×101 + 9×99 + 95 → mean 99.8, σ = √(43.2/19) ≈ 1.508 → lower ≈ 96.78 → BUY
        #expect(try BollingerBands().evaluate(makeBars(base + [95])).action == .buy)
        #expect(try BollingerBands().evaluate(makeBars(base + [105])).action == .sell)
        #expect(try BollingerBands().evaluate(makeBars(base + [100])).action == .hold)
        // flat window: bands collapse → HOLD (not the original's accidental BUY)
        let flat = try BollingerBands().evaluate(makeBars([Double](repeating: 100, count: 60)))
        #expect(flat.action == .hold && flat.strength == 0)
    }

    @Test func relativeStrength() throws {
        let base = [Double](repeating: 100, count: 59)
        // SMA50 = (49·100 + 110)/50 = 100.2 → rs 1.0978 > 1.05
        #expect(try RelativeStrength().evaluate(makeBars(base + [110])).action == .buy)
        // SMA50 = 99.8 → rs 0.9018 < 0.9524
        #expect(try RelativeStrength().evaluate(makeBars(base + [90])).action == .sell)
        #expect(try RelativeStrength().evaluate(makeBars(base + [101])).action == .hold)
    }

    // MARK: breakouts (the port's fix: previous N bars)

    @Test func breakoutFiresOnANewHigh() throws {
        var bars = makeBars([Double](repeating: 100, count: 60), spread: 1)  // highs 101, lows 99
        bars[59].close = 103
        bars[59].high = 104  // > highest high of the previous 20 bars (101)
        let e = try Breakout().evaluate(bars)
        #expect(e.action == .buy)
        #expect(e.strength == 1)  // 2.97 % past the channel; full strength from 2 %
        bars[59] = Bar(timestamp: bars[59].timestamp, open: 100, high: 100.5, low: 95, close: 96, volume: 1)
        #expect(try Breakout().evaluate(bars).action == .sell)
        let inside = try Breakout().evaluate(makeBars([Double](repeating: 100, count: 60)))
        #expect(inside.action == .hold)
    }

    @Test func breakoutWithTheOriginalWindowCouldNeverFire() {
        var highs = [Double](repeating: 101, count: 60)
        highs[59] = 150
        let lows = [Double](repeating: 99, count: 60)
        let original = Indicators.donchian(highs: highs, lows: lows, period: 20, excludingLast: false)
        #expect(!(highs[59] > original.upper))  // the current bar is its own ceiling
        let fixed = Indicators.donchian(highs: highs, lows: lows, period: 20)
        #expect(highs[59] > fixed.upper)
    }

    @Test func volatilityBreakout() throws {
        var bars = makeBars([Double](repeating: 100, count: 40), spread: 1)  // TR 2
        // last bar: 100 → 120, high 121: TR 21, ATR(14) = (13·2 + 21)/14 = 3.357, up = 101 + 5.04 = 106.04
        bars[39] = Bar(timestamp: bars[39].timestamp, open: 100, high: 121, low: 100, close: 120, volume: 1)
        let up = try VolatilityBreakout().evaluate(bars)
        #expect(up.action == .buy)
        #expect(up.strength == 1)  // (121 − 106.04)/3.357 > 1
        bars[39] = Bar(timestamp: bars[39].timestamp, open: 100, high: 100, low: 79, close: 80, volume: 1)
        #expect(try VolatilityBreakout().evaluate(bars).action == .sell)
        // a 4-point move is a Breakout but not 1.5 ATR beyond the channel → HOLD
        bars[39] = Bar(timestamp: bars[39].timestamp, open: 100, high: 104, low: 100, close: 103.5, volume: 1)
        #expect(try VolatilityBreakout().evaluate(bars).action == .hold)
    }

    // MARK: names

    @Test func lenientNamesAndAliases() {
        #expect(StrategyName(lenient: "TrendFollowing") == .trendFollowing)
        #expect(StrategyName(lenient: " bollingerbands ") == .bollingerBands)
        #expect(StrategyName(lenient: "MovingAverageCrossover") == .trendFollowing)
        #expect(StrategyName(lenient: "Momentum") == .momentumRotation)
        #expect(StrategyName(lenient: "RSI_OversoldOverbought") == .meanReversion)
        #expect(StrategyName(lenient: "VolumeProfile") == .breakout)
        #expect(StrategyName(lenient: "SupportResistance") == .breakout)
        #expect(StrategyName(lenient: "ConsolidationBreakout") == .breakout)
        #expect(StrategyName(lenient: "nope") == nil)
        #expect(
            StrategyName.allCases.map(\.rawValue) == [
                "TrendFollowing", "MomentumRotation", "MeanReversion", "Breakout", "VolatilityBreakout",
                "RelativeStrength", "SectorRotation", "DualMomentum", "MovingAverageEnvelope", "BollingerBands",
            ])
        for name in StrategyName.allCases {
            #expect(type(of: name.makeStrategy()).name == name)
        }
    }
}
