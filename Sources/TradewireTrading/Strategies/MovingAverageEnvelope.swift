/// Moving-average envelope: MA(20) ± 2.5 %; BUY when close ≤ lower, SELL when close ≥ upper.
/// Minimum 50 bars.
///
/// Strength: BUY `clamp(((lower − close)/lower) / 2.5%)`; SELL `clamp(((close − upper)/upper) / 2.5%)`;
/// HOLD `clamp(1 − min(close − lower, upper − close) / ((upper − lower)/2))`.
public struct MovingAverageEnvelope: Strategy {
    public static let name = StrategyName.movingAverageEnvelope
    public static let minimumBars = 50
    public var period: Int
    /// Fraction (0.025 = 2.5 %).
    public var envelope: Double

    public init(period: Int = 20, envelope: Double = 0.025) {
        self.period = period
        self.envelope = envelope
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let close = series.closes[series.count - 1]
        let ma = Indicators.sma(series.closes, period: period)
        guard Score.finite(close, ma), ma > 0 else { return Score.unavailable("MA(\(period))") }
        let lower = ma * (1 - envelope)
        let upper = ma * (1 + envelope)
        let text =
            "close \(Format.fixed(close)) vs envelope \(Format.fixed(lower))–\(Format.fixed(upper)) around MA\(period) \(Format.fixed(ma))"
        if close <= lower {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess((lower - close) / lower, per: envelope),
                reasoning: text + ": below the envelope")
        }
        if close >= upper {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess((close - upper) / upper, per: envelope),
                reasoning: text + ": above the envelope")
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(distance: min(close - lower, upper - close), halfWidth: (upper - lower) / 2),
            reasoning: text + ": inside")
    }
}
