/// Dual momentum: absolute `abs = pct_change(126) × 100` and relative
/// `rel = (close − SMA50) / SMA50 × 100`; BUY when both are positive, SELL when either is
/// negative. Minimum 126 bars.
///
/// Strength: BUY `clamp(min(abs / 20, rel / 5))`; SELL `clamp(max(−abs / 20, −rel / 5))`;
/// HOLD (one of them exactly 0, neither negative) 1.
public struct DualMomentum: Strategy {
    public static let name = StrategyName.dualMomentum
    public static let minimumBars = 126
    public var lookback: Int
    public var maPeriod: Int

    public init(lookback: Int = 126, maPeriod: Int = 50) {
        self.lookback = lookback
        self.maPeriod = maPeriod
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let closes = series.closes
        let close = closes[closes.count - 1]
        let absolute = Indicators.pctChange(closes, periods: lookback) * 100
        let ma = Indicators.sma(closes, period: maPeriod)
        let relative = (close - ma) / ma * 100
        guard Score.finite(absolute, relative) else { return Score.unavailable("dual momentum") }
        let text =
            "absolute \(lookback)-bar momentum \(Format.signedPercent(absolute)), relative to SMA\(maPeriod) \(Format.signedPercent(relative))"
        if absolute > 0 && relative > 0 {
            return StrategyEvaluation(
                action: .buy, strength: Score.clamp01(min(absolute / 20, relative / 5)),
                reasoning: text + ": both positive")
        }
        if absolute < 0 || relative < 0 {
            return StrategyEvaluation(
                action: .sell, strength: Score.clamp01(max(-absolute / 20, -relative / 5)),
                reasoning: text + ": momentum negative")
        }
        return StrategyEvaluation(action: .hold, strength: 1, reasoning: text + ": flat")
    }
}
