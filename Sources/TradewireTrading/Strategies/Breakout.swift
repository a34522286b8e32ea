/// Donchian breakout: BUY when the last high exceeds the highest high of the **previous**
/// 20 bars, SELL when the last low undercuts their lowest low. Minimum 60 bars.
///
/// The original included the current bar in the channel, so it could never fire; the port
/// uses the previous N bars (ARCHITECTURE §3).
///
/// Strength: BUY `clamp((high/upper − 1) / 2%)`; SELL `clamp((1 − low/lower) / 2%)`;
/// HOLD `clamp(1 − min(upper − close, close − lower) / ((upper − lower)/2))`.
public struct Breakout: Strategy {
    public static let name = StrategyName.breakout
    public static let minimumBars = 60
    public var period: Int

    public init(period: Int = 20) { self.period = period }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let n = series.count
        let (upper, lower) = Indicators.donchian(highs: series.highs, lows: series.lows, period: period)
        let high = series.highs[n - 1]
        let low = series.lows[n - 1]
        let close = series.closes[n - 1]
        guard Score.finite(upper, lower, high, low), upper > 0, lower > 0 else {
            return Score.unavailable("Donchian channel")
        }
        let text =
            "high \(Format.fixed(high)) / low \(Format.fixed(low)) vs previous \(period)-bar channel \(Format.fixed(lower))–\(Format.fixed(upper))"
        if high > upper {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess(high / upper - 1, per: 0.02), reasoning: text + ": upside breakout"
            )
        }
        if low < lower {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess(1 - low / lower, per: 0.02),
                reasoning: text + ": downside breakout")
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(distance: min(upper - close, close - lower), halfWidth: (upper - lower) / 2),
            reasoning: text + ": inside the channel")
    }
}
