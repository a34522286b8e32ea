import Foundation
import Logging

/// Sends approved BUY/SELL signals to the paper broker as market orders (original §7.5 and
/// the fixed async orchestrator): only `approved` non-HOLD signals, `qty ?? 1` shares, side
/// = the lower-cased action, reference price = the signal's price (or the broker's last
/// mark). A refused order becomes a result with `executed: false` and its error.
public struct ExecutionAgent: Sendable {
    public let broker: PaperBroker
    let logger: Logger

    public init(broker: PaperBroker, logger: Logger) {
        self.broker = broker
        self.logger = logger
    }

    /// One result per approved non-HOLD signal, sorted by symbol (stable), all stamped `now`.
    ///
    /// With `dryRun` the broker is not touched: results have `executed: false`, no order id,
    /// no error, and the estimated fill price and commission.
    public func execute(_ signals: [TradingSignal], dryRun: Bool, now: Date) async -> [ExecutionResult] {
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
            var reference = signal.price
            if reference == nil { reference = await broker.lastPrice(of: signal.symbol) }
            guard let referencePrice = reference, referencePrice.isFinite, referencePrice > 0 else {
                result.error = BrokerError.invalidPrice(symbol: signal.symbol).message
                logger.warning(
                    "execution.failed", metadata: ["symbol": "\(signal.symbol)", "error": "\(result.error ?? "")"])
                results.append(result)
                continue
            }
            guard quantity > 0 else {
                result.error = BrokerError.invalidQuantity(quantity).message
                results.append(result)
                continue
            }
            if dryRun {
                let estimate = await broker.quote(side: side, quantity: quantity, referencePrice: referencePrice)
                result.fillPrice = estimate.fillPrice
                result.commission = estimate.commission
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
                result.error = error.message
                logger.warning(
                    "execution.failed", metadata: ["symbol": "\(signal.symbol)", "error": "\(error.message)"])
            }
            results.append(result)
        }
        return results
    }
}
