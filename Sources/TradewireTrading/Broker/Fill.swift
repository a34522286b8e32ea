/// A paper order's fill.
public struct Fill: Sendable, Equatable {
    /// `paper-000001`, `paper-000002`, … (sequential per broker).
    public var orderID: String
    /// Dollars per share, rounded to 1/10 000.
    public var fillPrice: Double
    public var quantity: Int
    public var side: OrderSide
    /// Dollars, rounded to 1/10 000.
    public var commission: Double

    public init(orderID: String, fillPrice: Double, quantity: Int, side: OrderSide, commission: Double) {
        self.orderID = orderID
        self.fillPrice = fillPrice
        self.quantity = quantity
        self.side = side
        self.commission = commission
    }
}
