import TradewireJSON

/// The paper account at one moment, in exact ledger amounts.
///
/// JSON: `{"cash", "equity", "positions": {SYMBOL: qty}, "marks": {SYMBOL: price},
/// "commission_paid", "orders"}` with dollar amounts as numbers and symbols sorted.
public struct AccountSnapshot: Sendable, Equatable, JSONEncodable {
    public var cash: Money
    /// `cash + Σ position × mark`.
    public var equity: Money
    /// Shares per symbol (negative when short); flat positions are removed.
    public var positions: [String: Int]
    /// Last known price per symbol.
    public var marks: [String: Money]
    public var commissionPaid: Money
    /// Orders filled so far.
    public var orders: Int

    public init(
        cash: Money, equity: Money, positions: [String: Int], marks: [String: Money], commissionPaid: Money, orders: Int
    ) {
        self.cash = cash
        self.equity = equity
        self.positions = positions
        self.marks = marks
        self.commissionPaid = commissionPaid
        self.orders = orders
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("cash", cash)
        writer.field("equity", equity)
        writer.key("positions")
        writer.beginObject()
        for symbol in positions.keys.sorted() { writer.field(symbol, positions[symbol] ?? 0) }
        writer.endObject()
        writer.key("marks")
        writer.beginObject()
        for symbol in marks.keys.sorted() { writer.field(symbol, marks[symbol] ?? .zero) }
        writer.endObject()
        writer.field("commission_paid", commissionPaid)
        writer.field("orders", orders)
        writer.endObject()
    }
}
