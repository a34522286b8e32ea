import Logging

/// Statistical validation of signals: scales each signal's confidence by the quality of its
/// symbol's recent returns, with the original's formulas (§7.3).
///
/// With `r` the one-bar returns of the symbol's closes:
/// 1. `mean(r) ≤ 0` → confidence × 0.8.
/// 2. Volatility regime: rolling sample std of `r` over `w = min(20, len r)`; if its last
///    value ÷ the mean of the rolling series > 2 → × 0.7.
/// 3. With at least 30 returns: Sharpe `mean/std(ddof 1)·√252` (0 when std is 0) below
///    `minSharpe` → × `max(0.5, sharpe/minSharpe)`; maximum drawdown of `Π(1+r)` above
///    `maxDrawdown` → × `maxDrawdown/maxDD`.
/// 4. Clamp to [0, 1].
///
/// A symbol with no market data (or fewer than 2 bars) passes through unchanged. The
/// original's VIF check is dropped (ARCHITECTURE §3). A short note of what was applied is
/// appended to `reasoning`.
public struct QuantAgent: Sendable {
    public let minSharpe: Double
    public let maxDrawdown: Double
    let logger: Logger

    public init(minSharpe: Double = 0.8, maxDrawdown: Double = 0.15, logger: Logger) {
        self.minSharpe = minSharpe
        self.maxDrawdown = maxDrawdown
        self.logger = logger
    }

    /// The same signals, same count and order, with adjusted confidence and a note.
    public func validate(_ signals: [TradingSignal], marketData: [String: MarketData]) -> [TradingSignal] {
        signals.map { signal in
            guard let bars = marketData[signal.symbol]?.bars, bars.count >= 2 else {
                logger.debug("quant.no_data", metadata: ["symbol": "\(signal.symbol)"])
                return signal
            }
            var closes: [Double] = []
            closes.reserveCapacity(bars.count)
            for bar in bars { closes.append(bar.close) }
            return validate(signal, closes: closes)
        }
    }

    /// Validates one signal against a close series (oldest first; needs at least 2 closes,
    /// else the signal is returned unchanged).
    public func validate(_ signal: TradingSignal, closes: [Double]) -> TradingSignal {
        let r = Indicators.returns(closes)
        guard !r.isEmpty else { return signal }
        var signal = signal
        let original = signal.confidence
        var confidence = original
        var notes: [String] = []

        if !(Indicators.mean(r) > 0) {
            confidence *= 0.8
            notes.append("non-positive mean return ×0.8")
        }

        if let (last, average) = Self.rollingStdLastAndMean(r, window: min(20, r.count)), average > 0,
            last / average > 2.0
        {
            confidence *= 0.7
            notes.append("volatility regime ×0.7")
        }

        if r.count >= 30 {
            let sharpe = Indicators.sharpe(returns: r)
            if minSharpe > 0, sharpe < minSharpe {
                let factor = max(0.5, sharpe / minSharpe)
                confidence *= factor
                notes.append("Sharpe \(Format.fixed(sharpe)) < \(Format.fixed(minSharpe)) ×\(Format.fixed(factor, 3))")
            } else {
                notes.append("Sharpe \(Format.fixed(sharpe))")
            }
            let drawdown = Indicators.maxDrawdown(returns: r)
            if drawdown > maxDrawdown, drawdown > 0 {
                let factor = maxDrawdown / drawdown
                confidence *= factor
                notes.append(
                    "max drawdown \(Format.fixed(drawdown * 100, 1))% > \(Format.fixed(maxDrawdown * 100, 1))% ×\(Format.fixed(factor, 3))"
                )
            } else {
                notes.append("max drawdown \(Format.fixed(drawdown * 100, 1))%")
            }
        } else {
            notes.append("\(r.count) returns < 30: Sharpe/drawdown skipped")
        }

        confidence = confidence.isNaN ? 0 : min(1, max(0, confidence))
        signal.confidence = confidence
        let note =
            "quant: " + notes.joined(separator: ", ")
            + "; confidence \(Format.fixed(original, 3)) → \(Format.fixed(confidence, 3))"
        signal.reasoning = signal.reasoning.map { $0 + " | " + note } ?? note
        logger.debug(
            "quant.validated",
            metadata: [
                "symbol": "\(signal.symbol)", "confidence.before": "\(original)", "confidence.after": "\(confidence)",
            ])
        return signal
    }

    /// The last value and the mean of the rolling sample standard deviation (ddof 1) of `x`
    /// over `window` (pandas `rolling(window).std()`, NaNs skipped); nil when no window has
    /// two or more values. Two passes per window, so a constant window is exactly 0.
    static func rollingStdLastAndMean(_ x: [Double], window: Int) -> (last: Double, mean: Double)? {
        guard window >= 2, x.count >= window else { return nil }
        return x.withUnsafeBufferPointer { p -> (Double, Double) in
            let w = Double(window)
            var total = 0.0
            var last = 0.0
            for end in window...p.count {
                var sum = 0.0
                for i in (end - window)..<end { sum += p[i] }
                let mean = sum / w
                var squares = 0.0
                for i in (end - window)..<end {
                    let d = p[i] - mean
                    squares += d * d
                }
                last = (squares / (w - 1)).squareRoot()
                total += last
            }
            return (last, total / Double(p.count - window + 1))
        }
    }
}
