/// An in-process paper broker with an exact ledger (ARCHITECTURE §3).
///
/// Market orders fill immediately at the reference price ± slippage (buys pay up, sells
/// receive less), rounded to 1/10 000 dollar; commission is `commissionPerShare × qty`,
/// rounded the same way. Cash, positions and marks are kept in ``Money``, so any number of
/// trades leaves no rounding drift. No shorting unless enabled; order ids are sequential.
public actor PaperBroker {
    private let slippageBps: Double
    private let commissionPerShare: Double
    private let allowShorting: Bool
    private var cash: Money
    private var positions: [String: Int] = [:]
    private var marks: [String: Money] = [:]
    private var commissionPaid = Money.zero
    private var orderCount = 0

    public init(startingCash: Double, slippageBps: Double, commissionPerShare: Double, allowShorting: Bool) {
        self.cash = Money(dollars: startingCash)
        self.slippageBps = slippageBps
        self.commissionPerShare = commissionPerShare
        self.allowShorting = allowShorting
    }

    /// Builds a broker from the configuration's paper-broker settings.
    public init(config: TradingConfig) {
        self.init(
            startingCash: config.startingCash, slippageBps: config.slippageBps,
            commissionPerShare: config.commissionPerShare, allowShorting: config.allowShorting)
    }

    /// `cash + Σ position × last mark`, in dollars.
    public var equity: Double { equityMoney.dollars }

    private var equityMoney: Money {
        var total = cash
        for (symbol, qty) in positions {
            total = total + (marks[symbol] ?? .zero) * qty
        }
        return total
    }

    /// The ledger now.
    public func account() -> AccountSnapshot {
        AccountSnapshot(
            cash: cash, equity: equityMoney, positions: positions, marks: marks, commissionPaid: commissionPaid,
            orders: orderCount)
    }

    /// Updates the last prices used for equity (non-positive or non-finite prices are ignored).
    public func mark(_ prices: [String: Double]) {
        for (symbol, price) in prices where price.isFinite && price > 0 {
            marks[symbol] = Money(dollars: price)
        }
    }

    /// The last mark for a symbol, in dollars.
    public func lastPrice(of symbol: String) -> Double? { marks[symbol]?.dollars }

    /// Fills a market order (see the type's documentation) and marks the symbol at
    /// `referencePrice`.
    ///
    /// - Throws: ``BrokerError`` — `insufficient cash` when a buy costs more than the cash,
    ///   `no position to sell (shorting disabled)` when a sell exceeds the position.
    @discardableResult
    public func submit(symbol: String, side: OrderSide, quantity: Int, referencePrice: Double) throws(BrokerError)
        -> Fill
    {
        guard quantity > 0 else { throw .invalidQuantity(quantity) }
        guard referencePrice.isFinite, referencePrice > 0 else { throw .invalidPrice(symbol: symbol) }
        let (fill, commission) = price(side: side, quantity: quantity, referencePrice: referencePrice)
        let notional = fill * quantity
        let held = positions[symbol] ?? 0
        switch side {
        case .buy:
            let required = notional + commission
            guard required <= cash else { throw .insufficientCash(required: required, available: cash) }
            cash = cash - required
            setPosition(symbol, held + quantity)
        case .sell:
            guard allowShorting || held >= quantity else {
                throw .noPosition(symbol: symbol, held: held, requested: quantity)
            }
            cash = cash + notional - commission
            setPosition(symbol, held - quantity)
        }
        commissionPaid = commissionPaid + commission
        marks[symbol] = Money(dollars: referencePrice)
        orderCount += 1
        return Fill(
            orderID: "paper-" + Format.zeroPadded(orderCount, width: 6), fillPrice: fill.dollars, quantity: quantity,
            side: side, commission: commission.dollars)
    }

    /// The fill price and commission an order would get now, without changing anything
    /// (for dry runs).
    public func quote(side: OrderSide, quantity: Int, referencePrice: Double) -> (fillPrice: Double, commission: Double)
    {
        let (fill, commission) = price(side: side, quantity: quantity, referencePrice: referencePrice)
        return (fill.dollars, commission.dollars)
    }

    private func price(side: OrderSide, quantity: Int, referencePrice: Double) -> (fill: Money, commission: Money) {
        let slip = slippageBps / 10_000
        let raw = side == .buy ? referencePrice * (1 + slip) : referencePrice * (1 - slip)
        return (Money(dollars: raw), Money(dollars: commissionPerShare * Double(max(quantity, 0))))
    }

    private func setPosition(_ symbol: String, _ qty: Int) {
        positions[symbol] = qty == 0 ? nil : qty
    }
}
