import Foundation
import Logging

/// The strategy stage's output.
public struct StrategyOutput: Sendable {
    /// One signal per symbol that could be evaluated, sorted by symbol.
    public var signals: [TradingSignal]
    /// Symbols without a signal (too few bars), sorted by symbol.
    public var failures: [SymbolFailure]

    public init(signals: [TradingSignal] = [], failures: [SymbolFailure] = []) {
        self.signals = signals
        self.failures = failures
    }
}

/// Turns market data into one ``TradingSignal`` per symbol: computes the ``MarketContext``,
/// picks a strategy (``RegimeSelector`` or a fixed one), evaluates it on the last bar and
/// derives confidence, stop loss and take profit. Pure and deterministic.
///
/// **Confidence** (from the strategy's strength `s` ∈ [0, 1]):
/// BUY/SELL → `0.5 + 0.5·s` (in [0.5, 1]); HOLD → `0.5·(1 − s)` (in [0, 0.5]: a HOLD close to
/// a trigger is a weak HOLD).
///
/// **Levels** (original §7.2, with `vol` = ``MarketContext/volatility``): BUY stop loss
/// `price × 0.98`, take profit `price × (1 + max(0.02, vol/100))`; SELL stop loss
/// `price × 1.02`, take profit `price × (1 − max(0.02, vol/100))`; HOLD none.
public struct StrategyAgent: Sendable {
    public let selector: StrategySelector
    let logger: Logger

    public init(selector: StrategySelector = .regime, logger: Logger) {
        self.selector = selector
        self.logger = logger
    }

    /// The confidence formula (see the type's documentation).
    /// The stop-loss and take-profit the built-in strategies set: 2 % below (BUY) or above
    /// (SELL) the price, and a take-profit band of max(2 %, volatility %); none for HOLD.
    public static func protectiveLevels(action: SignalAction, price: Double, volatility: Double)
        -> (stopLoss: Double?, takeProfit: Double?)
    {
        let band = max(0.02, volatility / 100)
        switch action {
        case .buy: return (price * 0.98, price * (1 + band))
        case .sell: return (price * 1.02, price * (1 - band))
        case .hold: return (nil, nil)
        }
    }

    public static func confidence(for evaluation: StrategyEvaluation) -> Double {
        let s = Score.clamp01(evaluation.strength)
        switch evaluation.action {
        case .buy, .sell: return 0.5 + 0.5 * s
        case .hold: return 0.5 * (1 - s)
        }
    }

    /// One signal per symbol that has enough bars, sorted by symbol; ids are
    /// `"\(idPrefix)-\(SYMBOL)"`, timestamps `now`, price the last close. `override`
    /// replaces the selector for this call. A symbol with fewer bars than the chosen
    /// strategy needs (30 for the regime selector) gets no signal and a failure
    /// `insufficient data: need at least N bars, got M`.
    public func generate(
        marketData: [String: MarketData], override: StrategyName?, idPrefix: String, now: Date
    ) -> StrategyOutput {
        var output = StrategyOutput()
        output.signals.reserveCapacity(marketData.count)
        let effective: StrategySelector = override.map { .fixed($0) } ?? selector
        let origin = override != nil ? "override" : (selector == .regime ? "regime selector" : "fixed selector")
        for symbol in marketData.keys.sorted() {
            guard let data = marketData[symbol] else { continue }
            switch signal(for: symbol, data: data, selector: effective, origin: origin, idPrefix: idPrefix, now: now) {
            case .success(let signal):
                output.signals.append(signal)
            case .failure(let failure):
                logger.debug(
                    "strategy.skipped", metadata: ["symbol": "\(symbol)", "reason": "\(failure.message)"])
                output.failures.append(failure)
            }
        }
        logger.debug(
            "strategy.generated",
            metadata: ["signals": "\(output.signals.count)", "failures": "\(output.failures.count)"])
        return output
    }

    private func signal(
        for symbol: String, data: MarketData, selector: StrategySelector, origin: String, idPrefix: String, now: Date
    ) -> Outcome {
        let n = data.bars.count
        let needed: Int
        switch selector {
        case .regime: needed = RegimeSelector.minimumBars
        case .fixed(let name): needed = name.minimumBars
        }
        guard n >= needed, n >= 2 else {
            return .failure(
                SymbolFailure(
                    symbol: symbol, message: "insufficient data: need at least \(max(needed, 2)) bars, got \(n)"))
        }
        let series = PriceSeries(bars: data.bars)
        guard let context = MarketContext(series: series) else {
            return .failure(SymbolFailure(symbol: symbol, message: "insufficient data: need at least 2 bars, got \(n)"))
        }
        let name: StrategyName
        switch selector {
        case .regime: name = RegimeSelector.select(context)
        case .fixed(let fixed): name = fixed
        }
        let evaluation: StrategyEvaluation
        do {
            evaluation = try name.evaluate(series)
        } catch {
            switch error {
            case .insufficientData(let need, let got):
                return .failure(
                    SymbolFailure(symbol: symbol, message: "insufficient data: need at least \(need) bars, got \(got)"))
            }
        }
        let price = context.currentPrice
        let levels = Self.protectiveLevels(action: evaluation.action, price: price, volatility: context.volatility)
        let stopLoss = levels.stopLoss
        let takeProfit = levels.takeProfit
        let confidence = Self.confidence(for: evaluation)
        logger.debug(
            "strategy.signal",
            metadata: [
                "symbol": "\(symbol)", "strategy": "\(name.rawValue)", "action": "\(evaluation.action.rawValue)",
                "confidence": "\(confidence)", "regime": "\(context.regime)",
            ])
        return .success(
            TradingSignal(
                id: "\(idPrefix)-\(symbol)",
                symbol: symbol,
                action: evaluation.action,
                strategyName: name.rawValue,
                confidence: confidence,
                timestamp: now,
                price: price,
                stopLoss: stopLoss,
                takeProfit: takeProfit,
                reasoning: "\(name.rawValue) (\(origin), \(context.regime)): \(evaluation.reasoning)"
            ))
    }
}

/// One symbol's outcome in ``StrategyAgent``.
private enum Outcome {
    case success(TradingSignal)
    case failure(SymbolFailure)
}
