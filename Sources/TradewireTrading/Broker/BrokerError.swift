/// Why the paper broker refused an order.
public enum BrokerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A buy would cost more than the cash held.
    case insufficientCash(required: Money, available: Money)
    /// A sell beyond the position held while shorting is disabled.
    case noPosition(symbol: String, held: Int, requested: Int)
    /// Quantity ≤ 0.
    case invalidQuantity(Int)
    /// A reference price that is not a positive finite number (or none known), or one whose
    /// fill price rounds to zero.
    case invalidPrice(symbol: String)
    /// The order's value, commission, the resulting cash or position is beyond what the
    /// ledger can hold (``Money`` holds about ±9.2e14 dollars).
    case overflow(symbol: String, quantity: Int, referencePrice: Double)

    public var message: String {
        switch self {
        case .insufficientCash(let required, let available):
            "insufficient cash: need \(required), have \(available)"
        case .noPosition(let symbol, let held, let requested):
            "no position to sell (shorting disabled): \(symbol) holds \(held), sell of \(requested) requested"
        case .invalidQuantity(let quantity):
            "quantity must be positive, got \(quantity)"
        case .invalidPrice(let symbol):
            "no valid reference price for \(symbol)"
        case .overflow(let symbol, let quantity, let referencePrice):
            "order value overflows the ledger: \(quantity) × \(referencePrice) for \(symbol)"
        }
    }

    public var description: String { message }
}
