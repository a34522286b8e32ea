/// Relative strength against the 50-bar average: `rs = close / SMA50`; BUY when
/// `rs > 1.05`, SELL when `rs < 1/1.05`. Minimum 50 bars.
///
/// Strength: BUY `clamp((rs − 1.05) / 0.10)`; SELL `clamp((1/1.05 − rs) / 0.10)`;
/// HOLD `clamp(1 − min(1.05 − rs, rs − 1/1.05) / ((1.05 − 1/1.05)/2))`.
public struct RelativeStrength: Strategy {
    public static let name = StrategyName.relativeStrength
    public static let minimumBars = 50
    public var period: Int
    public var threshold: Double

    public init(period: Int = 50, threshold: Double = 1.05) {
        self.period = period
        self.threshold = threshold
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let close = series.closes[series.count - 1]
        let ma = Indicators.sma(series.closes, period: period)
        let rs = close / ma
        guard Score.finite(close, ma, rs) else { return Score.unavailable("relative strength") }
        let lower = 1 / threshold
        let text =
            "close/SMA\(period) \(Format.fixed(rs, 4)) (BUY above \(Format.fixed(threshold, 4)), SELL below \(Format.fixed(lower, 4)))"
        if rs > threshold {
            return StrategyEvaluation(action: .buy, strength: Score.excess(rs - threshold, per: 0.10), reasoning: text)
        }
        if rs < lower {
            return StrategyEvaluation(action: .sell, strength: Score.excess(lower - rs, per: 0.10), reasoning: text)
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(distance: min(threshold - rs, rs - lower), halfWidth: (threshold - lower) / 2),
            reasoning: text)
    }
}
