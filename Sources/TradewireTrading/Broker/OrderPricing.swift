/// How the paper broker prices a market order, shared with risk's buying-power check so the
/// two agree to the ledger unit.
///
/// Fill price = reference × (1 ± `slippageBps`/10 000) (buys pay up, sells receive less);
/// commission = `commissionPerShare × qty`; each rounded to 1/10 000 dollar. Every amount is
/// checked: one that does not fit the ledger throws ``MoneyOverflow`` instead of trapping.
public struct OrderPricing: Sendable, Equatable {
    /// Slippage in basis points.
    public var slippageBps: Double
    /// Commission in dollars per share.
    public var commissionPerShare: Double

    public init(slippageBps: Double, commissionPerShare: Double) {
        self.slippageBps = slippageBps
        self.commissionPerShare = commissionPerShare
    }

    /// The configuration's paper-broker slippage and commission.
    public init(config: TradingConfig) {
        self.init(slippageBps: config.slippageBps, commissionPerShare: config.commissionPerShare)
    }

    /// The price per share an order fills at.
    public func fillPrice(side: OrderSide, referencePrice: Double) throws(MoneyOverflow) -> Money {
        let slip = slippageBps / 10_000
        let raw = side == .buy ? referencePrice * (1 + slip) : referencePrice * (1 - slip)
        return try Money(validatingDollars: raw)
    }

    /// The commission on `quantity` shares (none for a quantity ≤ 0).
    public func commission(quantity: Int) throws(MoneyOverflow) -> Money {
        try Money(validatingDollars: commissionPerShare * Double(Swift.max(quantity, 0)))
    }

    /// The whole order priced: fill price, notional (`fill × qty`), commission, and the cash
    /// a buy needs (`notional + commission`).
    public func quote(side: OrderSide, quantity: Int, referencePrice: Double) throws(MoneyOverflow) -> OrderQuote {
        let fill = try fillPrice(side: side, referencePrice: referencePrice)
        let notional = try fill.multiplied(by: quantity)
        let commission = try commission(quantity: quantity)
        let required = try notional.adding(commission)
        return OrderQuote(fillPrice: fill, notional: notional, commission: commission, cashRequired: required)
    }
}

/// One order priced by ``OrderPricing``, in exact ledger amounts.
public struct OrderQuote: Sendable, Equatable {
    /// Price per share.
    public var fillPrice: Money
    /// `fillPrice × quantity`.
    public var notional: Money
    public var commission: Money
    /// `notional + commission`: the cash a buy takes.
    public var cashRequired: Money

    public init(fillPrice: Money, notional: Money, commission: Money, cashRequired: Money) {
        self.fillPrice = fillPrice
        self.notional = notional
        self.commission = commission
        self.cashRequired = cashRequired
    }
}
