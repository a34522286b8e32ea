/// Volatility breakout: BUY when the last high exceeds the previous 20 bars' highest high
/// by more than 1.5 × ATR(14); SELL when the last low undercuts their lowest low by more
/// than 1.5 × ATR(14). ATR is the simple mean of true range. Minimum 30 bars.
///
/// As with ``Breakout``, the port uses the **previous** bars (the original's window
/// included the current bar and could never fire).
///
/// Strength: BUY `clamp((high − (prevHigh + 1.5·ATR)) / ATR)`; SELL
/// `clamp(((prevLow − 1.5·ATR) − low) / ATR)`; HOLD: proximity of the close to the nearer
/// band, `clamp(1 − min(up − close, close − down) / ((up − down)/2))`.
public struct VolatilityBreakout: Strategy {
    public static let name = StrategyName.volatilityBreakout
    public static let minimumBars = 30
    public var atrPeriod: Int
    public var lookback: Int
    public var multiplier: Double

    public init(atrPeriod: Int = 14, lookback: Int = 20, multiplier: Double = 1.5) {
        self.atrPeriod = atrPeriod
        self.lookback = lookback
        self.multiplier = multiplier
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let n = series.count
        let atr = Indicators.atr(highs: series.highs, lows: series.lows, closes: series.closes, period: atrPeriod)
        let (prevHigh, prevLow) = Indicators.donchian(highs: series.highs, lows: series.lows, period: lookback)
        guard Score.finite(atr, prevHigh, prevLow) else { return Score.unavailable("ATR/channel") }
        let up = prevHigh + multiplier * atr
        let down = prevLow - multiplier * atr
        let high = series.highs[n - 1]
        let low = series.lows[n - 1]
        let close = series.closes[n - 1]
        let text =
            "high \(Format.fixed(high)) / low \(Format.fixed(low)) vs bands \(Format.fixed(down))–\(Format.fixed(up)) (ATR(\(atrPeriod)) \(Format.fixed(atr)))"
        if high > up {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess(high - up, per: atr), reasoning: text + ": volatility breakout up")
        }
        if low < down {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess(down - low, per: atr), reasoning: text + ": volatility breakdown")
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(distance: min(up - close, close - down), halfWidth: (up - down) / 2),
            reasoning: text + ": no breakout")
    }
}
