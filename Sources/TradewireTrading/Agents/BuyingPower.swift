/// The cash and shares a ``RiskAgent`` call may still commit: the account's, less what the
/// call's earlier approvals will spend or sell (orders execute in that order per symbol).
struct BuyingPower {
    private let positions: [String: Int]
    private let pricing: OrderPricing
    /// The account's cash less the cost of this call's approved BUYs.
    private(set) var cash: Money
    /// Shares approved in this call per symbol: BUYs add, SELLs subtract.
    private var pending: [String: Int] = [:]

    init(account: AccountSnapshot, pricing: OrderPricing) {
        self.positions = account.positions
        self.pricing = pricing
        self.cash = account.cash
    }

    /// Shares held once this call's earlier approvals have executed.
    func shares(of symbol: String) -> Int {
        let change = pending[symbol] ?? 0
        let (total, overflow) = (positions[symbol] ?? 0).addingReportingOverflow(change)
        return overflow ? (change > 0 ? .max : .min) : total
    }

    /// The largest BUY quantity, at most `upTo`, whose cost fits the remaining cash and
    /// whose resulting position `(held + qty) × price` stays within `positionLimit` dollars
    /// (0 when not one share fits).
    func affordableShares(of symbol: String, at price: Double, upTo wanted: Int, positionLimit: Double) -> Int {
        guard wanted > 0, price.isFinite, price > 0, cash > .zero else { return 0 }
        // Position cap, with a relative tolerance so that e.g. 0.2 × 100 000 / 100 is 200 shares.
        let room = (positionLimit / price * (1 + 1e-12)).rounded(.down) - Double(shares(of: symbol))
        guard room >= 1 else { return 0 }
        var qty = room < Double(wanted) ? Int(room) : wanted
        // Cash cap: estimate from the per-share cost, then step down to the exact ledger cost.
        if !fits(qty, at: price) {
            let perShare = (try? pricing.fillPrice(side: .buy, referencePrice: price).dollars) ?? .infinity
            let estimate = (cash.dollars / (perShare + max(pricing.commissionPerShare, 0))).rounded(.down)
            qty = estimate < Double(qty) ? max(Int(estimate), 0) : qty - 1
            while qty > 0, !fits(qty, at: price) { qty -= 1 }
        }
        return qty
    }

    /// Books an approval: a BUY spends its exact cost; both sides move the pending shares.
    mutating func record(_ action: SignalAction, symbol: String, quantity: Int, at price: Double) {
        switch action {
        case .buy:
            if let quote = try? pricing.quote(side: .buy, quantity: quantity, referencePrice: price) {
                cash = (try? cash.subtracting(quote.cashRequired)) ?? .zero
            }
            pending[symbol, default: 0] += quantity
        case .sell:
            pending[symbol, default: 0] -= quantity
        case .hold:
            break
        }
    }

    private func fits(_ qty: Int, at price: Double) -> Bool {
        guard let quote = try? pricing.quote(side: .buy, quantity: qty, referencePrice: price) else { return false }
        return quote.cashRequired <= cash
    }
}
