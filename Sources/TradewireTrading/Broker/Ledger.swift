import TradewireJSON

/// The paper account's books as a value: cash, positions with their cost basis, marks,
/// realised P&L, commissions and the order count.
///
/// ``book(symbol:side:quantity:fillPrice:commission:mark:)`` is the one place a fill changes
/// the books: the live ``PaperBroker`` books its fills through it, and recovery folds the
/// journal's fills through it, so a rebuilt book equals the live one by construction.
///
/// Cost basis is signed like the position (a short's is negative). A fill that grows a
/// position adds `qty × price` to it; one that shrinks it removes the closed share of the
/// basis (`basis × closed / held`, rounded to the ledger unit) and books
/// `±(closed × price) − removed` as realised P&L (gross of commission, which is kept apart);
/// a fill that crosses zero closes the old side and opens the new one at the fill price.
public struct Ledger: Sendable, Equatable {
    /// One open position: signed shares and signed cost basis.
    public struct Position: Sendable, Equatable {
        public var quantity: Int
        public var cost: Money

        public init(quantity: Int, cost: Money) {
            self.quantity = quantity
            self.cost = cost
        }

        /// `|cost| / |quantity|`, in dollars.
        public var averagePrice: Double {
            quantity == 0 ? 0 : abs(cost.dollars) / Double(quantity.magnitude)
        }
    }

    public var cash: Money
    /// Open positions; flat ones are removed.
    public var positions: [String: Position] = [:]
    /// Last known price per symbol.
    public var marks: [String: Money] = [:]
    public var commissionPaid = Money.zero
    public var realizedPnL = Money.zero
    /// Orders filled so far (the next order id is `orders + 1`).
    public var orders = 0

    public init(cash: Money) {
        self.cash = cash
    }

    /// `cash + Σ position × last mark`; saturates at the ledger's range rather than trapping
    /// (a display total, never booked).
    public var equity: Money {
        var total = cash
        for (symbol, position) in positions {
            total = total.saturatingAdding((marks[symbol] ?? .zero).saturatingMultiplied(by: position.quantity))
        }
        return total
    }

    /// The account as risk and stage handlers see it (shares per symbol, no cost basis).
    public var accountSnapshot: AccountSnapshot {
        AccountSnapshot(
            cash: cash, equity: equity, positions: positions.mapValues(\.quantity), marks: marks,
            commissionPaid: commissionPaid, orders: orders)
    }

    /// Unrealised P&L of one position at its mark: `qty × mark − cost`.
    public func unrealizedPnL(of symbol: String) -> Money {
        guard let position = positions[symbol], let mark = marks[symbol] else { return .zero }
        return mark.saturatingMultiplied(by: position.quantity).saturatingAdding(-position.cost)
    }

    /// Books one fill (see the type's documentation). Every amount is checked first, so a
    /// fill that does not fit the ledger throws and changes nothing.
    ///
    /// - Parameter mark: the price the symbol is marked at afterwards (the order's reference
    ///   price); nil keeps the current mark, or marks at the fill price when there is none.
    public mutating func book(
        symbol: String, side: OrderSide, quantity: Int, fillPrice: Money, commission: Money, mark: Money? = nil
    ) throws(MoneyOverflow) {
        guard quantity > 0 else { throw MoneyOverflow(operation: "a fill of \(quantity) shares") }
        let notional = try fillPrice.multiplied(by: quantity)
        let newCash =
            switch side {
            case .buy: try cash.subtracting(notional).subtracting(commission)
            case .sell: try cash.adding(notional).subtracting(commission)
            }
        let held = positions[symbol] ?? Position(quantity: 0, cost: .zero)
        let delta = side == .buy ? quantity : -quantity
        var position = held
        var realized = realizedPnL
        if held.quantity != 0, (held.quantity > 0) != (delta > 0) {
            // Closing (part of) the position.
            let closed = min(quantity, Int(held.quantity.magnitude))
            let removed = Self.share(of: held.cost, closed, of: Int(held.quantity.magnitude))
            let value = try fillPrice.multiplied(by: closed)
            let pnl = held.quantity > 0 ? try value.subtracting(removed) : try (-removed).subtracting(value)
            realized = try realized.adding(pnl)
            position.cost = try position.cost.subtracting(removed)
            position.quantity += held.quantity > 0 ? -closed : closed
            let opened = quantity - closed
            if opened > 0 {
                let cost = try fillPrice.multiplied(by: opened)
                position.quantity += delta > 0 ? opened : -opened
                position.cost = try position.cost.adding(delta > 0 ? cost : -cost)
            }
        } else {
            let (newQuantity, overflow) = held.quantity.addingReportingOverflow(delta)
            guard !overflow else { throw MoneyOverflow(operation: "a position of \(held.quantity) + \(delta) shares") }
            position.quantity = newQuantity
            position.cost = try position.cost.adding(delta > 0 ? notional : -notional)
        }
        let paid = try commissionPaid.adding(commission)
        cash = newCash
        positions[symbol] = position.quantity == 0 ? nil : position
        commissionPaid = paid
        realizedPnL = realized
        if let mark { marks[symbol] = mark } else if marks[symbol] == nil { marks[symbol] = fillPrice }
        orders += 1
    }

    /// `cost × part / whole`, rounded to the ledger unit (exact in 128 bits, so it never
    /// overflows for `part ≤ whole`).
    static func share(of cost: Money, _ part: Int, of whole: Int) -> Money {
        guard whole > 0, part < whole else { return cost }
        let product = Int128(cost.units) * Int128(part)
        let divisor = Int128(whole)
        var quotient = product / divisor
        let remainder = product % divisor
        if (remainder.magnitude * 2) >= divisor.magnitude { quotient += product < 0 ? -1 : 1 }
        return Money(units: Int64(quotient))
    }
}

extension Ledger {
    /// The books as a JSON document (a checkpoint): `{"cash", "commission_paid",
    /// "realized_pnl", "orders", "positions": {SYMBOL: {"qty", "cost"}}, "marks": {SYMBOL:
    /// price}}`, amounts in ledger units (exact).
    public var checkpointJSON: JSONValue {
        var positionsObject = JSONObject()
        for symbol in positions.keys.sorted() {
            guard let position = positions[symbol] else { continue }
            positionsObject[symbol] = .object([
                "qty": JSONValue(position.quantity), "cost": JSONValue(Int(position.cost.units)),
            ])
        }
        var marksObject = JSONObject()
        for symbol in marks.keys.sorted() { marksObject[symbol] = JSONValue(Int(marks[symbol]?.units ?? 0)) }
        return .object([
            "cash": JSONValue(Int(cash.units)), "commission_paid": JSONValue(Int(commissionPaid.units)),
            "realized_pnl": JSONValue(Int(realizedPnL.units)), "orders": JSONValue(orders),
            "positions": .object(positionsObject), "marks": .object(marksObject),
        ])
    }

    /// Reads ``checkpointJSON``.
    public init(checkpoint json: JSONValue) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: "")
        self.init(cash: Money(units: Int64(try r.int("cash"))))
        commissionPaid = Money(units: Int64(try r.int("commission_paid")))
        realizedPnL = Money(units: Int64(try r.int("realized_pnl")))
        orders = try r.int("orders")
        for member in try r.optionalObject("positions")?.object ?? [:] {
            let p = try JSONObjectReader(member.value, path: "/positions/" + member.key)
            positions[member.key] = Position(
                quantity: try p.int("qty"), cost: Money(units: Int64(try p.int("cost"))))
        }
        for member in try r.optionalObject("marks")?.object ?? [:] {
            guard let units = member.value.intValue else {
                throw JSONDecodingError(path: "/marks/" + member.key, message: "expected an integer")
            }
            marks[member.key] = Money(units: Int64(units))
        }
    }
}
