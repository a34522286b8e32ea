/// The deterministic strategy selector that replaces the original's LLM choice
/// (ARCHITECTURE §3). It reads only the ``MarketContext`` and always returns a strategy whose
/// minimum bars are met (callers guarantee at least ``minimumBars``).
///
/// With `n` bars, `vol` = ``MarketContext/volatility``,
/// `trend% = (ma20 − ma50) / ma50 × 100` (0 when n < 50),
/// `direction` = +1 when `ma_trend` is UP and trend% > 0, −1 when DOWN and trend% < 0, else 0,
/// `trending` = direction ≠ 0 and |trend%| ≥ 1.5, and `mom` = `momentum_126` (nil when n ≤ 126);
/// the first matching rule wins:
///
/// 1. **Trending** (checked first: a strong trend also inflates the volatility measure):
///    no `mom` → RelativeStrength; `mom` against the direction (a pullback inside a longer
///    move) → MeanReversion; |mom| ≥ 15 → MomentumRotation; n ≥ 200 → TrendFollowing;
///    otherwise DualMomentum.
/// 2. **High volatility** (vol > 3): a momentum bar (|last change| > 2 %) or n < 50 →
///    VolatilityBreakout; otherwise BollingerBands.
/// 3. **Low volatility** (vol < 1): n ≥ 60 and the close in the top or bottom 10 % of its
///    range → Breakout; otherwise MeanReversion.
/// 4. **Normal volatility, no trend**: |mom| ≥ 10 → SectorRotation; |mom| ≥ 3 →
///    DualMomentum; n ≥ 50 and the close 3 % or more away from ma50 → RelativeStrength;
///    n ≥ 50 → MovingAverageEnvelope; otherwise MeanReversion.
public enum RegimeSelector {
    /// The fewest bars for which a strategy can be selected (MeanReversion/VolatilityBreakout).
    public static let minimumBars = 30
    /// |trend%| from which the 20/50 averages count as a trend.
    public static let trendThresholdPercent = 1.5

    /// The strategy for this context (see the type's documentation for the rules).
    public static func select(_ context: MarketContext) -> StrategyName {
        let n = context.barsCount
        let trendPercent = n >= 50 && context.ma50 != 0 ? (context.ma20 - context.ma50) / context.ma50 * 100 : 0
        let direction: Double
        switch context.maTrend {
        case .up where trendPercent > 0: direction = 1
        case .down where trendPercent < 0: direction = -1
        default: direction = 0
        }
        let trending = direction != 0 && abs(trendPercent) >= trendThresholdPercent
        let mom = context.momentum126

        if trending {
            guard let mom else { return .relativeStrength }
            if sign(mom) != direction { return .meanReversion }
            if abs(mom) >= 15 { return .momentumRotation }
            return n >= 200 ? .trendFollowing : .dualMomentum
        }
        switch context.volatilityRegime {
        case .high:
            return context.hasMomentum || n < 50 ? .volatilityBreakout : .bollingerBands
        case .low:
            if n >= 60, context.pricePositionInRange >= 90 || context.pricePositionInRange <= 10 { return .breakout }
            return .meanReversion
        case .normal:
            if let mom, abs(mom) >= 10 { return .sectorRotation }
            if let mom, abs(mom) >= 3 { return .dualMomentum }
            guard n >= 50 else { return .meanReversion }
            if context.ma50 > 0, abs(context.currentPrice / context.ma50 - 1) >= 0.03 { return .relativeStrength }
            return .movingAverageEnvelope
        }
    }

    private static func sign(_ x: Double) -> Double { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
