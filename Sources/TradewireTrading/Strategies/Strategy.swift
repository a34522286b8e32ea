/// The outcome of evaluating a strategy on the last bar.
public struct StrategyEvaluation: Sendable, Equatable {
    public var action: SignalAction
    /// In [0, 1]. For BUY/SELL: how far past its trigger the indicator is (0 = just past,
    /// 1 = the strategy's full-strength distance or more). For HOLD: how close the indicator
    /// is to the nearest trigger (0 = far inside the neutral zone or unavailable, 1 = at it).
    public var strength: Double
    /// One line with the indicator values behind the decision.
    public var reasoning: String

    public init(action: SignalAction, strength: Double, reasoning: String) {
        self.action = action
        self.strength = strength
        self.reasoning = reasoning
    }
}

/// Why a strategy could not evaluate.
public enum StrategyError: Error, Sendable, Equatable, CustomStringConvertible {
    case insufficientData(need: Int, got: Int)

    /// `Insufficient data: need at least N bars, got M` (the original's text).
    public var message: String {
        switch self {
        case .insufficientData(let need, let got): "Insufficient data: need at least \(need) bars, got \(got)"
        }
    }

    public var description: String { message }
}

/// A deterministic rule on daily bars that says BUY, SELL or HOLD for the last bar.
///
/// Rules and minimum bars are the original system's (see TRADING.md); any NaN indicator
/// gives HOLD with strength 0.
public protocol Strategy: Sendable {
    static var name: StrategyName { get }
    /// Bars required; fewer throws ``StrategyError/insufficientData(need:got:)``.
    static var minimumBars: Int { get }
    /// Evaluates the last bar of a prepared series.
    func evaluate(_ series: PriceSeries) throws(StrategyError) -> StrategyEvaluation
    /// Evaluates the last bar.
    func evaluate(_ bars: [Bar]) throws(StrategyError) -> StrategyEvaluation
}

extension Strategy {
    public func evaluate(_ bars: [Bar]) throws(StrategyError) -> StrategyEvaluation {
        try evaluate(PriceSeries(bars: bars))
    }

    /// Throws unless the series has at least ``minimumBars`` bars.
    func requireBars(_ series: PriceSeries) throws(StrategyError) {
        guard series.count >= Self.minimumBars else {
            throw .insufficientData(need: Self.minimumBars, got: series.count)
        }
    }
}

/// Shared scoring helpers for strategies.
enum Score {
    /// Clamps to [0, 1]; NaN becomes 0.
    @inline(__always)
    static func clamp01(_ x: Double) -> Double {
        guard !x.isNaN else { return 0 }
        return min(1, max(0, x))
    }

    /// Strength of a signal `amount` past its trigger, full at `scale`: `clamp(amount / scale)`.
    @inline(__always)
    static func excess(_ amount: Double, per scale: Double) -> Double {
        guard scale > 0 else { return amount > 0 ? 1 : 0 }
        return clamp01(amount / scale)
    }

    /// HOLD strength: `clamp(1 − distance / halfWidth)`, 1 at a trigger and 0 at
    /// `halfWidth` or more away (the middle of a symmetric neutral zone).
    @inline(__always)
    static func proximity(distance: Double, halfWidth: Double) -> Double {
        guard halfWidth > 0 else { return 1 }
        return clamp01(1 - distance / halfWidth)
    }

    /// True when every value is finite (fixed arities: no variadic array allocation).
    @inline(__always)
    static func finite(_ a: Double, _ b: Double) -> Bool { a.isFinite && b.isFinite }
    @inline(__always)
    static func finite(_ a: Double, _ b: Double, _ c: Double) -> Bool { a.isFinite && b.isFinite && c.isFinite }
    @inline(__always)
    static func finite(_ a: Double, _ b: Double, _ c: Double, _ d: Double) -> Bool {
        a.isFinite && b.isFinite && c.isFinite && d.isFinite
    }

    /// HOLD for an indicator that could not be computed.
    static func unavailable(_ what: String) -> StrategyEvaluation {
        StrategyEvaluation(action: .hold, strength: 0, reasoning: "\(what) unavailable (NaN): HOLD")
    }
}
