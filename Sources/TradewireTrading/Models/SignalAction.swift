import TradewireJSON

/// What a signal asks for. Raw values are the wire strings.
public enum SignalAction: String, Sendable, Hashable, CaseIterable, JSONEncodable {
    case buy = "BUY"
    case sell = "SELL"
    case hold = "HOLD"

    public func encodeJSON(to writer: inout JSONWriter) { writer.write(rawValue) }

    /// The broker side for BUY/SELL (nil for HOLD).
    public var orderSide: OrderSide? {
        switch self {
        case .buy: .buy
        case .sell: .sell
        case .hold: nil
        }
    }
}
