/// Bollinger-band reversion: MA(20) ± 2 × sample standard deviation (ddof = 1); BUY when
/// close ≤ lower band, SELL when close ≥ upper band. Minimum 50 bars.
///
/// A zero deviation (flat window) collapses the bands onto the average; the port then says
/// HOLD (the original would have bought a flat series, since close ≤ lower held).
///
/// Strength: BUY `clamp((lower − close) / σ)`; SELL `clamp((close − upper) / σ)`;
/// HOLD `clamp(1 − min(close − lower, upper − close) / 2σ)`.
public struct BollingerBands: Strategy {
    public static let name = StrategyName.bollingerBands
    public static let minimumBars = 50
    public var period: Int
    public var deviations: Double

    public init(period: Int = 20, deviations: Double = 2) {
        self.period = period
        self.deviations = deviations
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let closes = series.closes
        let n = closes.count
        guard period >= 2, period <= n else { return Score.unavailable("Bollinger bands") }
        let close = closes[n - 1]
        let ma = Indicators.sma(closes, period: period)
        let sd = Indicators.sampleStd(closes[(n - period)..<n])
        guard Score.finite(close, ma, sd) else { return Score.unavailable("Bollinger bands") }
        guard sd > 0 else {
            return StrategyEvaluation(
                action: .hold, strength: 0, reasoning: "Bollinger bands collapsed (zero deviation): HOLD")
        }
        let lower = ma - deviations * sd
        let upper = ma + deviations * sd
        let text =
            "close \(Format.fixed(close)) vs bands \(Format.fixed(lower))–\(Format.fixed(upper)) (MA\(period) \(Format.fixed(ma)), σ \(Format.fixed(sd)))"
        if close <= lower {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess(lower - close, per: sd), reasoning: text + ": below the lower band"
            )
        }
        if close >= upper {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess(close - upper, per: sd),
                reasoning: text + ": above the upper band")
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(distance: min(close - lower, upper - close), halfWidth: deviations * sd),
            reasoning: text + ": inside")
    }
}
