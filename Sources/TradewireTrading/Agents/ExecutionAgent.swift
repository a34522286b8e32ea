import Foundation
import Logging

/// Sends approved BUY/SELL signals to the paper broker as market orders (original §7.5 and
/// the fixed async orchestrator): only `approved` non-HOLD signals, `qty ?? 1` shares, side
/// = the lower-cased action.
///
/// The broker fills at its own price: the reference price is the iteration's market data
/// (the symbol's last close, ``referencePrices(from:)``), else the broker's last mark —
/// never the signal's `price`, which a client may have written. A refused order becomes a
/// result with `executed: false` and its error, and (outside dry runs) gives the signal's
/// `risk_amount` back to the ``RiskBudget`` for the iteration's day.
public struct ExecutionAgent: Sendable {
    public let broker: PaperBroker
    /// The budget risk committed approvals to; refused orders release their risk here.
    public let budget: RiskBudget
    let logger: Logger

    public init(broker: PaperBroker, budget: RiskBudget, logger: Logger) {
        self.broker = broker
        self.budget = budget
        self.logger = logger
    }

    /// The last close per symbol (symbols without bars are left out): the reference prices
    /// of an iteration.
    public static func referencePrices(from marketData: [String: MarketData]) -> [String: Double] {
        var prices: [String: Double] = [:]
        prices.reserveCapacity(marketData.count)
        for (symbol, data) in marketData {
            if let close = data.lastClose { prices[symbol] = close }
        }
        return prices
    }

    /// One result per approved non-HOLD signal, sorted by symbol (stable), all stamped `now`.
    ///
    /// - Parameters:
    ///   - referencePrices: the price per symbol orders fill around (the iteration's last
    ///     closes); a symbol without a positive finite one uses the broker's last mark.
    ///   - asOf: the iteration's date: the UTC day whose risk budget a refused order releases.
    ///   - dryRun: the broker is not touched: results have `executed: false`, no order id and
    ///     the estimated fill price and commission (an error only when the order could not
    ///     be priced); nothing is released.
    public func execute(
        _ signals: [TradingSignal], referencePrices: [String: Double], asOf: Date, dryRun: Bool, now: Date
    ) async -> [ExecutionResult] {
        let orders = signals.enumerated()
            .filter { $0.element.approved && $0.element.action != .hold }
            .sorted { ($0.element.symbol, $0.offset) < ($1.element.symbol, $1.offset) }
            .map(\.element)
        var results: [ExecutionResult] = []
        results.reserveCapacity(orders.count)
        for signal in orders {
            guard let side = signal.action.orderSide else { continue }
            let quantity = signal.qty ?? 1
            var result = ExecutionResult(
                signal: signal, executed: false, executionTime: now, quantity: quantity, side: side)
            var reference = referencePrices[signal.symbol].flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
            if reference == nil { reference = await broker.lastPrice(of: signal.symbol) }
            guard let referencePrice = reference, referencePrice.isFinite, referencePrice > 0 else {
                refuse(&result, .invalidPrice(symbol: signal.symbol), asOf: asOf, dryRun: dryRun)
                results.append(result)
                continue
            }
            guard quantity > 0 else {
                refuse(&result, .invalidQuantity(quantity), asOf: asOf, dryRun: dryRun)
                results.append(result)
                continue
            }
            if dryRun {
                do {
                    let estimate = try await broker.quote(
                        symbol: signal.symbol, side: side, quantity: quantity, referencePrice: referencePrice)
                    result.fillPrice = estimate.fillPrice
                    result.commission = estimate.commission
                } catch {
                    refuse(&result, error, asOf: asOf, dryRun: dryRun)
                }
                results.append(result)
                continue
            }
            do {
                let fill = try await broker.submit(
                    symbol: signal.symbol, side: side, quantity: quantity, referencePrice: referencePrice)
                result.executed = true
                result.orderID = fill.orderID
                result.fillPrice = fill.fillPrice
                result.commission = fill.commission
                logger.info(
                    "execution.filled",
                    metadata: [
                        "symbol": "\(signal.symbol)", "order.id": "\(fill.orderID)", "side": "\(side.rawValue)",
                        "qty": "\(quantity)", "fill.price": "\(fill.fillPrice)",
                    ])
            } catch {
                refuse(&result, error, asOf: asOf, dryRun: dryRun)
            }
            results.append(result)
        }
        return results
    }

    /// Records a refusal on the result and, outside dry runs, releases the signal's risk.
    private func refuse(_ result: inout ExecutionResult, _ error: BrokerError, asOf: Date, dryRun: Bool) {
        result.error = error.message
        logger.warning(
            "execution.failed", metadata: ["symbol": "\(result.signal.symbol)", "error": "\(error.message)"])
        guard !dryRun, let risk = result.signal.riskAmount, risk > 0 else { return }
        budget.release(risk, on: asOf)
        logger.debug(
            "execution.risk_released", metadata: ["symbol": "\(result.signal.symbol)", "risk_amount": "\(risk)"])
    }
}
