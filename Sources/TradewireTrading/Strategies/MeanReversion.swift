/// RSI mean reversion: RSI(14) with simple means (not Wilder); BUY below 30, SELL above 70.
/// Minimum 30 bars.
///
/// Strength: BUY `clamp((30 − rsi) / 30)`; SELL `clamp((rsi − 70) / 30)`;
/// HOLD `clamp(1 − min(rsi − 30, 70 − rsi) / 20)`.
public struct MeanReversion: Strategy {
    public static let name = StrategyName.meanReversion
    public static let minimumBars = 30
    public var period: Int
    public var oversold: Double
    public var overbought: Double

    public init(period: Int = 14, oversold: Double = 30, overbought: Double = 70) {
        self.period = period
        self.oversold = oversold
        self.overbought = overbought
    }

    public func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation {
        try requireBars(series)
        let rsi = Indicators.rsi(series.closes, period: period)
        guard rsi.isFinite else { return Score.unavailable("RSI(\(period))") }
        let text =
            "RSI(\(period)) \(Format.fixed(rsi)) (oversold < \(Format.fixed(oversold, 0)), overbought > \(Format.fixed(overbought, 0)))"
        if rsi < oversold {
            return StrategyEvaluation(
                action: .buy, strength: Score.excess(oversold - rsi, per: 30), reasoning: text + ": oversold")
        }
        if rsi > overbought {
            return StrategyEvaluation(
                action: .sell, strength: Score.excess(rsi - overbought, per: 30), reasoning: text + ": overbought")
        }
        return StrategyEvaluation(
            action: .hold,
            strength: Score.proximity(
                distance: min(rsi - oversold, overbought - rsi), halfWidth: (overbought - oversold) / 2),
            reasoning: text)
    }
}
