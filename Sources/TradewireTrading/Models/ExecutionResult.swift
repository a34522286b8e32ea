import Foundation
import TradewireJSON

/// What happened (or, in a dry run, would happen) to one approved signal at the broker.
///
/// JSON: `{"signal", "order_id", "executed", "execution_time", "error", "fill_price",
/// "quantity", "side", "commission"}`. Decoding requires `signal`; `executed` defaults to
/// false, everything else to null. As for ``TradingSignal``, absurd values are refused with
/// the member's path: `fill_price` must be a positive finite number at most
/// ``TradingSignal/maxPrice``, `quantity` an integer from 0 to ``TradingSignal/maxQuantity``,
/// `commission` a non-negative finite number, and `quantity × fill_price` must fit in ``Money``.
public struct ExecutionResult: Sendable, JSONModel {
    public var signal: TradingSignal
    public var orderID: String?
    public var executed: Bool
    public var executionTime: Date?
    public var error: String?
    public var fillPrice: Double?
    public var quantity: Int?
    public var side: OrderSide?
    public var commission: Double?

    public init(
        signal: TradingSignal, orderID: String? = nil, executed: Bool = false, executionTime: Date? = nil,
        error: String? = nil, fillPrice: Double? = nil, quantity: Int? = nil, side: OrderSide? = nil,
        commission: Double? = nil
    ) {
        self.signal = signal
        self.orderID = orderID
        self.executed = executed
        self.executionTime = executionTime
        self.error = error
        self.fillPrice = fillPrice
        self.quantity = quantity
        self.side = side
        self.commission = commission
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("signal", signal)
        writer.field("order_id", orderID)
        writer.field("executed", executed)
        writer.field("execution_time", executionTime)
        writer.field("error", error)
        writer.field("fill_price", fillPrice)
        writer.field("quantity", quantity)
        writer.field("side", side)
        writer.field("commission", commission)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        signal = try r.decode(TradingSignal.self, "signal")
        orderID = try r.optionalString("order_id")
        executed = try r.optionalBool("executed") ?? false
        executionTime = try r.optionalDate("execution_time")
        error = try r.optionalString("error")
        fillPrice = try r.optionalPrice("fill_price")
        quantity = try r.optionalQuantity("quantity")
        try r.checkNotional(quantity: quantity, price: fillPrice, quantityKey: "quantity")
        if let text = try r.optionalString("side") {
            guard let side = OrderSide(lenient: text) else {
                throw JSONDecodingError(path: r.pointer("side"), message: "expected buy or sell")
            }
            self.side = side
        } else {
            side = nil
        }
        commission = try r.optionalNonNegative("commission")
    }
}
