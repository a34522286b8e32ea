/// Technical and statistical indicators on `[Double]` series (oldest first).
///
/// Conventions follow the original system's pandas code: a value that needs more data than
/// the series has is `Double.nan` (never a trap), rolling series are aligned with their
/// input (leading NaNs), and "last value" functions return what `rolling(...).iloc[-1]`
/// would. Nothing here allocates unless it returns an array.
public enum Indicators {
    // MARK: means and deviations

    /// Arithmetic mean; NaN when empty.
    public static func mean(_ x: ArraySlice<Double>) -> Double {
        guard !x.isEmpty else { return .nan }
        var sum = 0.0
        for v in x { sum += v }
        return sum / Double(x.count)
    }

    /// Arithmetic mean; NaN when empty.
    public static func mean(_ x: [Double]) -> Double { mean(x[...]) }

    /// Simple moving average of the last `period` values
    /// (`rolling(period).mean().iloc[-1]`); NaN when `period < 1` or fewer values.
    public static func sma(_ x: [Double], period: Int) -> Double {
        sma(x, period: period, endingAt: x.count)
    }

    /// Simple moving average of the `period` values before index `end` (exclusive).
    public static func sma(_ x: [Double], period: Int, endingAt end: Int) -> Double {
        guard period >= 1, end <= x.count, end - period >= 0 else { return .nan }
        return mean(x[(end - period)..<end])
    }

    /// Rolling mean aligned with the input: element `i` is the mean of `x[i-window+1...i]`,
    /// NaN for `i < window-1` (pandas `rolling(window).mean()`).
    public static func rollingMean(_ x: [Double], window: Int) -> [Double] {
        guard window >= 1 else { return [Double](repeating: .nan, count: x.count) }
        var out = [Double](repeating: .nan, count: x.count)
        guard x.count >= window else { return out }
        for i in (window - 1)..<x.count {
            out[i] = mean(x[(i - window + 1)...i])
        }
        return out
    }

    /// Population standard deviation (ddof = 0, numpy's default); NaN when empty.
    public static func populationStd(_ x: ArraySlice<Double>) -> Double {
        guard !x.isEmpty else { return .nan }
        return (sumOfSquaredDeviations(x) / Double(x.count)).squareRoot()
    }

    /// Population standard deviation (ddof = 0); NaN when empty.
    public static func populationStd(_ x: [Double]) -> Double { populationStd(x[...]) }

    /// Sample standard deviation (ddof = 1, pandas' default); NaN with fewer than 2 values.
    public static func sampleStd(_ x: ArraySlice<Double>) -> Double {
        guard x.count >= 2 else { return .nan }
        return (sumOfSquaredDeviations(x) / Double(x.count - 1)).squareRoot()
    }

    /// Sample standard deviation (ddof = 1); NaN with fewer than 2 values.
    public static func sampleStd(_ x: [Double]) -> Double { sampleStd(x[...]) }

    /// Rolling sample standard deviation aligned with the input (pandas `rolling(window).std()`):
    /// NaN for `i < window-1`, and everywhere when `window < 2`. Each window is computed in two
    /// passes, so a constant window gives exactly 0.
    public static func rollingSampleStd(_ x: [Double], window: Int) -> [Double] {
        var out = [Double](repeating: .nan, count: x.count)
        guard window >= 2, x.count >= window else { return out }
        for i in (window - 1)..<x.count {
            out[i] = sampleStd(x[(i - window + 1)...i])
        }
        return out
    }

    private static func sumOfSquaredDeviations(_ x: ArraySlice<Double>) -> Double {
        let m = mean(x)
        var ss = 0.0
        for v in x {
            let d = v - m
            ss += d * d
        }
        return ss
    }

    // MARK: oscillators and ranges

    /// Relative Strength Index of the last bar with **simple** rolling means of gains and
    /// losses over the last `period` differences (the original's formula, not Wilder's
    /// smoothing): `rsi = 100 − 100 / (1 + meanGain / meanLoss)`.
    ///
    /// Needs `period + 1` closes, else NaN. No losses with some gains gives 100; no movement
    /// at all gives NaN (pandas' 0/0).
    public static func rsi(_ closes: [Double], period: Int = 14) -> Double {
        guard period >= 1, closes.count >= period + 1 else { return .nan }
        var gain = 0.0
        var loss = 0.0
        for i in (closes.count - period)..<closes.count {
            let d = closes[i] - closes[i - 1]
            if d > 0 { gain += d } else { loss -= d }
        }
        gain /= Double(period)
        loss /= Double(period)
        if loss == 0 { return gain == 0 ? .nan : 100 }
        let rs = gain / loss
        return 100 - 100 / (1 + rs)
    }

    /// True range of bar `i`: `max(high−low, |high−prevClose|, |low−prevClose|)`; the first
    /// bar (no previous close) is `high − low`.
    @inline(__always)
    public static func trueRange(highs: [Double], lows: [Double], closes: [Double], at i: Int) -> Double {
        let range = highs[i] - lows[i]
        guard i > 0 else { return range }
        let pc = closes[i - 1]
        return max(range, abs(highs[i] - pc), abs(lows[i] - pc))
    }

    /// True ranges for every bar (see ``trueRange(highs:lows:closes:at:)``).
    public static func trueRanges(highs: [Double], lows: [Double], closes: [Double]) -> [Double] {
        (0..<closes.count).map { trueRange(highs: highs, lows: lows, closes: closes, at: $0) }
    }

    /// Average True Range of the last bar: the **simple** mean of the last `period` true
    /// ranges (the original's `rolling(period).mean()`); NaN with fewer than `period` bars.
    public static func atr(highs: [Double], lows: [Double], closes: [Double], period: Int = 14) -> Double {
        let n = closes.count
        guard period >= 1, n >= period, highs.count == n, lows.count == n else { return .nan }
        var sum = 0.0
        for i in (n - period)..<n { sum += trueRange(highs: highs, lows: lows, closes: closes, at: i) }
        return sum / Double(period)
    }

    /// Donchian channel: the highest high and lowest low over `period` bars.
    ///
    /// With `excludingLast` (the default, the port's fix) the window is the `period` bars
    /// *before* the last one, so the last bar can break out of it; otherwise it ends with the
    /// last bar (the original's window, which the last bar can never exceed). NaN bounds when
    /// there are too few bars.
    public static func donchian(
        highs: [Double], lows: [Double], period: Int, excludingLast: Bool = true
    ) -> (upper: Double, lower: Double) {
        let end = excludingLast ? highs.count - 1 : highs.count
        guard period >= 1, end - period >= 0, lows.count == highs.count else { return (.nan, .nan) }
        var upper = -Double.infinity
        var lower = Double.infinity
        for i in (end - period)..<end {
            upper = max(upper, highs[i])
            lower = min(lower, lows[i])
        }
        return (upper, lower)
    }

    // MARK: returns and performance

    /// Fractional change of the last value over `periods` bars: `x[n−1] / x[n−1−periods] − 1`
    /// (`pct_change(periods).iloc[-1]`); NaN without `periods + 1` values.
    public static func pctChange(_ x: [Double], periods: Int) -> Double {
        guard periods >= 1, x.count > periods else { return .nan }
        return x[x.count - 1] / x[x.count - 1 - periods] - 1
    }

    /// Simple one-bar returns `x[i] / x[i−1] − 1` for i ≥ 1 (`pct_change().dropna()`):
    /// `count − 1` values.
    public static func returns(_ x: [Double]) -> [Double] {
        guard x.count >= 2 else { return [] }
        var r: [Double] = []
        r.reserveCapacity(x.count - 1)
        for i in 1..<x.count { r.append(x[i] / x[i - 1] - 1) }
        return r
    }

    /// Maximum drawdown of a return series, as a positive fraction: with the equity curve
    /// `cum = Π(1 + r)`, `max over t of (1 − cum[t] / max(cum[0…t]))`. 0 for an empty series
    /// or one that never falls.
    public static func maxDrawdown(returns: [Double]) -> Double {
        var cum = 1.0
        var peak = -Double.infinity
        var worst = 0.0
        for r in returns {
            cum *= 1 + r
            peak = max(peak, cum)
            let dd = cum / peak - 1
            if dd < worst { worst = dd }
        }
        return -worst
    }

    /// Annualised Sharpe ratio of a return series with zero risk-free rate:
    /// `mean(r) / sampleStd(r) · √periodsPerYear` (ddof = 1). 0 when the deviation is 0;
    /// NaN with fewer than 2 returns.
    public static func sharpe(returns: [Double], periodsPerYear: Double = 252) -> Double {
        guard returns.count >= 2 else { return .nan }
        let sd = sampleStd(returns)
        guard sd > 0 else { return 0 }
        return mean(returns) / sd * periodsPerYear.squareRoot()
    }
}
