import TradewireJSON

/// The original StrategyAgent's market context (§7.2), computed from bars; the input of
/// the deterministic ``RegimeSelector``.
///
/// JSON (for reasoning and debugging): the original's snake_case keys, plus
/// `momentum_126` (null when unavailable).
public struct MarketContext: Sendable, Equatable, JSONEncodable {
    /// `ma_trend`: close against the 20-bar average.
    public enum Trend: String, Sendable, Hashable {
        case up = "UP"
        case down = "DOWN"
        /// Fewer than 20 bars.
        case neutral = "NEUTRAL"
    }

    /// `recent_trend`: the sign of the last bar's change.
    public enum RecentTrend: String, Sendable, Hashable {
        case bullish = "BULLISH"
        case bearish = "BEARISH"
        case neutral = "NEUTRAL"
    }

    /// The volatility part of `regime`.
    public enum VolatilityRegime: String, Sendable, Hashable {
        /// `volatility > 3`.
        case high = "HIGH_VOLATILITY"
        /// `volatility < 1`.
        case low = "LOW_VOLATILITY"
        case normal = "NORMAL_VOLATILITY"
    }

    /// Last close.
    public var currentPrice: Double
    /// Last bar's change, percent.
    public var priceChangePct: Double
    /// Population std ÷ mean of the last 20 closes × 100 (all closes with 5–19 bars; 0 below 5).
    public var volatility: Double
    /// The same over the last 5 closes (0 below 5 bars).
    public var volatilityShort: Double
    /// Mean of the last min(20, n) closes.
    public var ma20: Double
    /// Mean of the last min(50, n) closes.
    public var ma50: Double
    public var maTrend: Trend
    /// Last volume ÷ mean of the last min(20, n) volumes (1 when that mean is 0).
    public var volumeRatio: Double
    /// Where the close sits between the lowest low and highest high of all bars, percent (50 for a zero range).
    public var pricePositionInRange: Double
    public var volatilityRegime: VolatilityRegime
    /// `|priceChangePct| > 2`: the regime gets a `_MOMENTUM` suffix.
    public var hasMomentum: Bool
    public var barsCount: Int
    public var recentTrend: RecentTrend
    /// 126-bar change in percent; nil with 126 bars or fewer.
    public var momentum126: Double?

    /// `HIGH_VOLATILITY`, `LOW_VOLATILITY` or `NORMAL_VOLATILITY`, with `_MOMENTUM` appended
    /// when the last bar moved more than 2 %.
    public var regime: String { volatilityRegime.rawValue + (hasMomentum ? "_MOMENTUM" : "") }

    /// A context from known values (for tests and remote selectors).
    public init(
        currentPrice: Double, priceChangePct: Double, volatility: Double, volatilityShort: Double, ma20: Double,
        ma50: Double, maTrend: Trend, volumeRatio: Double = 1, pricePositionInRange: Double = 50,
        hasMomentum: Bool? = nil, barsCount: Int, recentTrend: RecentTrend? = nil, momentum126: Double? = nil
    ) {
        self.currentPrice = currentPrice
        self.priceChangePct = priceChangePct
        self.volatility = volatility
        self.volatilityShort = volatilityShort
        self.ma20 = ma20
        self.ma50 = ma50
        self.maTrend = maTrend
        self.volumeRatio = volumeRatio
        self.pricePositionInRange = pricePositionInRange
        self.volatilityRegime = volatility > 3 ? .high : (volatility < 1 ? .low : .normal)
        self.hasMomentum = hasMomentum ?? (abs(priceChangePct) > 2)
        self.barsCount = barsCount
        self.recentTrend = recentTrend ?? (priceChangePct > 0 ? .bullish : (priceChangePct < 0 ? .bearish : .neutral))
        self.momentum126 = momentum126
    }

    /// Nil with fewer than 2 bars (the original's `{}`).
    public init?(series: PriceSeries) {
        let n = series.count
        guard n >= 2 else { return nil }
        let closes = series.closes
        let price = closes[n - 1]
        currentPrice = price
        priceChangePct = (price / closes[n - 2] - 1) * 100
        volatility = n >= 5 ? Self.coefficientOfVariation(closes[(n - min(20, n))..<n]) : 0
        volatilityShort = n >= 5 ? Self.coefficientOfVariation(closes[(n - 5)..<n]) : 0
        ma20 = Indicators.mean(closes[(n - min(20, n))..<n])
        ma50 = Indicators.mean(closes[(n - min(50, n))..<n])
        maTrend = n < 20 ? .neutral : (price > ma20 ? .up : .down)
        let averageVolume = Indicators.mean(series.volumes[(n - min(20, n))..<n])
        volumeRatio = averageVolume > 0 ? series.volumes[n - 1] / averageVolume : 1
        var low = Double.infinity
        var high = -Double.infinity
        for i in 0..<n {
            low = min(low, series.lows[i])
            high = max(high, series.highs[i])
        }
        pricePositionInRange = high - low > 0 ? (price - low) / (high - low) * 100 : 50
        volatilityRegime = volatility > 3 ? .high : (volatility < 1 ? .low : .normal)
        hasMomentum = abs(priceChangePct) > 2
        barsCount = n
        recentTrend = priceChangePct > 0 ? .bullish : (priceChangePct < 0 ? .bearish : .neutral)
        let momentum = Indicators.pctChange(closes, periods: 126) * 100
        momentum126 = momentum.isFinite ? momentum : nil
    }

    /// Nil with fewer than 2 bars.
    public init?(bars: [Bar]) {
        self.init(series: PriceSeries(bars: bars))
    }

    private static func coefficientOfVariation(_ x: ArraySlice<Double>) -> Double {
        let m = Indicators.mean(x)
        guard m != 0 else { return 0 }
        return Indicators.populationStd(x) / m * 100
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("current_price", currentPrice)
        writer.field("price_change_pct", priceChangePct)
        writer.field("volatility", volatility)
        writer.field("volatility_short", volatilityShort)
        writer.field("ma_20", ma20)
        writer.field("ma_50", ma50)
        writer.field("ma_trend", maTrend.rawValue)
        writer.field("volume_ratio", volumeRatio)
        writer.field("price_position_in_range", pricePositionInRange)
        writer.field("regime", regime)
        writer.field("bars_count", barsCount)
        writer.field("recent_trend", recentTrend.rawValue)
        writer.field("momentum_126", momentum126)
        writer.endObject()
    }
}
