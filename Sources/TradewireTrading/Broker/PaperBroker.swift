/// An in-process paper broker with an exact ledger (ARCHITECTURE §3).
///
/// Market orders fill immediately at the reference price ± slippage (buys pay up, sells
/// receive less), rounded to 1/10 000 dollar; commission is `commissionPerShare × qty`,
/// rounded the same way (``OrderPricing``). Cash, positions and marks are kept in ``Money``,
/// so any number of trades leaves no rounding drift, and every ledger operation is checked:
/// an order whose amounts do not fit is refused with ``BrokerError/overflow(symbol:quantity:referencePrice:)``
/// and changes nothing. No shorting unless enabled; order ids are `PREFIX-000001`, … with a
/// prefix that differs between daemon starts, so ids stay unique across restarts.
public actor PaperBroker {
    /// The slippage and commission applied to every order.
    public nonisolated let pricing: OrderPricing
    private let allowShorting: Bool
    private var ledger: Ledger
    private let orderIDPrefix: String

    /// - Parameter orderIDPrefix: the start of every order id (`paper` by default; an
    ///   ephemeral daemon adds its start token, a journaled one continues the recovered count).
    public init(
        startingCash: Double, slippageBps: Double, commissionPerShare: Double, allowShorting: Bool,
        orderIDPrefix: String = "paper"
    ) {
        self.orderIDPrefix = orderIDPrefix
        self.ledger = Ledger(cash: Money(dollars: startingCash))
        self.pricing = OrderPricing(slippageBps: slippageBps, commissionPerShare: commissionPerShare)
        self.allowShorting = allowShorting
    }

    /// Builds a broker from the configuration's paper-broker settings.
    public init(config: TradingConfig) {
        self.init(
            startingCash: config.startingCash, slippageBps: config.slippageBps,
            commissionPerShare: config.commissionPerShare, allowShorting: config.allowShorting)
    }

    /// `cash + Σ position × last mark`, in dollars.
    public var equity: Double { ledger.equity.dollars }

    /// The ledger now.
    public func account() -> AccountSnapshot { ledger.accountSnapshot }

    /// The books now: positions with their cost basis, realised P&L and the order count.
    public func books() -> Ledger { ledger }

    /// Replaces the books with recovered ones (at start, before any order).
    public func restore(_ books: Ledger) { ledger = books }

    /// Updates the last prices used for equity (prices that are not positive finite numbers,
    /// or that do not fit the ledger, are ignored).
    public func mark(_ prices: [String: Double]) {
        for (symbol, price) in prices where price.isFinite && price > 0 {
            guard let money = try? Money(validatingDollars: price), money > .zero else { continue }
            ledger.marks[symbol] = money
        }
    }

    /// The last mark for a symbol, in dollars.
    public func lastPrice(of symbol: String) -> Double? { ledger.marks[symbol]?.dollars }

    /// Fills a market order (see the type's documentation) and marks the symbol at
    /// `referencePrice`. A refused order changes nothing.
    ///
    /// - Throws: ``BrokerError`` — `insufficient cash` when a buy costs more than the cash,
    ///   `no position to sell (shorting disabled)` when a sell exceeds the position,
    ///   `order value overflows the ledger` when an amount does not fit in ``Money``.
    @discardableResult
    public func submit(symbol: String, side: OrderSide, quantity: Int, referencePrice: Double) throws(BrokerError)
        -> Fill
    {
        let order = try price(symbol: symbol, side: side, quantity: quantity, referencePrice: referencePrice)
        let held = ledger.positions[symbol]?.quantity ?? 0
        switch side {
        case .buy:
            guard order.cashRequired <= ledger.cash else {
                throw .insufficientCash(required: order.cashRequired, available: ledger.cash)
            }
        case .sell:
            guard allowShorting || held >= quantity else {
                throw .noPosition(symbol: symbol, held: held, requested: quantity)
            }
        }
        do throws(MoneyOverflow) {
            try ledger.book(
                symbol: symbol, side: side, quantity: quantity, fillPrice: order.fillPrice,
                commission: order.commission, mark: try Money(validatingDollars: referencePrice))
        } catch {
            throw .overflow(symbol: symbol, quantity: quantity, referencePrice: referencePrice)
        }
        return Fill(
            orderID: orderIDPrefix + "-" + Format.zeroPadded(ledger.orders, width: 6),
            fillPrice: order.fillPrice.dollars, quantity: quantity, side: side, commission: order.commission.dollars)
    }

    /// The fill price and commission an order would get now, without changing anything
    /// (for dry runs).
    ///
    /// - Throws: ``BrokerError`` — an invalid quantity or price, or amounts beyond the ledger.
    public func quote(symbol: String, side: OrderSide, quantity: Int, referencePrice: Double) throws(BrokerError)
        -> (fillPrice: Double, commission: Double)
    {
        let order = try price(symbol: symbol, side: side, quantity: quantity, referencePrice: referencePrice)
        return (order.fillPrice.dollars, order.commission.dollars)
    }

    /// Validates and prices an order: quantity > 0, a positive finite reference price whose
    /// fill price is at least one ledger unit, and amounts that fit the ledger.
    private func price(symbol: String, side: OrderSide, quantity: Int, referencePrice: Double) throws(BrokerError)
        -> OrderQuote
    {
        guard quantity > 0 else { throw .invalidQuantity(quantity) }
        guard referencePrice.isFinite, referencePrice > 0 else { throw .invalidPrice(symbol: symbol) }
        let order: OrderQuote
        do throws(MoneyOverflow) {
            order = try pricing.quote(side: side, quantity: quantity, referencePrice: referencePrice)
        } catch {
            throw .overflow(symbol: symbol, quantity: quantity, referencePrice: referencePrice)
        }
        guard order.fillPrice > .zero else { throw .invalidPrice(symbol: symbol) }
        return order
    }
}
