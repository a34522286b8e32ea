/// Long-term trend: BUY when close > SMA(long) and SMA(short) > SMA(long); SELL when
/// close < SMA(long); otherwise HOLD. Defaults 50/200, minimum 200 bars.
///
/// Strength: BUY `clamp((close/SMA200 − 1) / 10%)`; SELL `clamp((1 − close/SMA200) / 10%)`;
/// HOLD (price above SMA200 but no golden cross) `clamp(1 − ((SMA200 − SMA50)/SMA200) / 5%)`.
public struct TrendFollowing: Strategy {
    public static let name = StrategyName.trendFollowing
    public static let minimumBars = 200
    public var shortPeriod: Int
    public var longPeriod: Int

    public init(shortPeriod: Int = 50, longPeriod: Int = 200) {
        self.shortPeriod = shortPeriod
        self.longPeriod = longPeriod
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let closes = series.closes
        let close = closes[closes.count - 1]
        let short = Indicators.sma(closes, period: shortPeriod)
        let long = Indicators.sma(closes, period: longPeriod)
        guard Score.finite(close, short, long), long > 0 else { return Score.unavailable("SMA") }
        let gap = close / long - 1
        let text =
            "close \(Format.fixed(close)) vs SMA\(longPeriod) \(Format.fixed(long)) (\(Format.signedPercent(gap * 100))), SMA\(shortPeriod) \(Format.fixed(short))"
        if close > long && short > long {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess(gap, per: 0.10), reasoning: text + ": uptrend")
        }
        if close < long {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess(-gap, per: 0.10), reasoning: text + ": below long-term trend")
        }
        return StrategyEvaluation(
            action: .hold, strength: Score.proximity(distance: (long - short) / long, halfWidth: 0.05),
            reasoning: text + ": no confirmed trend")
    }
}
