/// The rule shared by ``MomentumRotation`` and ``SectorRotation``:
/// `mom = pct_change(lookback) × 100`; BUY when `mom > threshold`, SELL when `mom < 0`.
///
/// Strength: BUY `clamp((mom − threshold) / 20)`; SELL `clamp(−mom / 20)`;
/// HOLD `clamp(1 − min(mom, threshold − mom) / (threshold / 2))`.
enum MomentumRule {
    static func evaluate(_ series: PriceSeries, lookback: Int, threshold: Double) -> StrategyEvaluation {
        let mom = Indicators.pctChange(series.closes, periods: lookback) * 100
        guard mom.isFinite else { return Score.unavailable("\(lookback)-bar momentum") }
        let text =
            "\(lookback)-bar momentum \(Format.signedPercent(mom)) (BUY above \(Format.fixed(threshold, 1))%, SELL below 0%)"
        if mom > threshold {
            return StrategyEvaluation(action: .buy, strength: Score.excess(mom - threshold, per: 20), reasoning: text)
        }
        if mom < 0 {
            return StrategyEvaluation(action: .sell, strength: Score.excess(-mom, per: 20), reasoning: text)
        }
        return StrategyEvaluation(
            action: .hold, strength: Score.proximity(distance: min(mom, threshold - mom), halfWidth: threshold / 2),
            reasoning: text)
    }
}

/// Six-month momentum: BUY when the 126-bar change exceeds 5 %, SELL when it is negative.
/// Minimum 126 bars (with exactly 126 the change is unavailable: HOLD, as the original).
public struct MomentumRotation: Strategy {
    public static let name = StrategyName.momentumRotation
    public static let minimumBars = 126
    public var lookback: Int
    /// Percent.
    public var momentumThreshold: Double

    public init(lookback: Int = 126, momentumThreshold: Double = 5.0) {
        self.lookback = lookback
        self.momentumThreshold = momentumThreshold
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        return MomentumRule.evaluate(series, lookback: lookback, threshold: momentumThreshold)
    }
}

/// Sector-style rotation on six-month momentum: BUY above 10 %, SELL below 0 %.
/// Minimum 126 bars.
public struct SectorRotation: Strategy {
    public static let name = StrategyName.sectorRotation
    public static let minimumBars = 126
    public var lookback: Int
    /// Percent.
    public var momentumThreshold: Double

    public init(lookback: Int = 126, momentumThreshold: Double = 10.0) {
        self.lookback = lookback
        self.momentumThreshold = momentumThreshold
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        return MomentumRule.evaluate(series, lookback: lookback, threshold: momentumThreshold)
    }
}
