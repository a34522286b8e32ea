import Foundation
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

/// `get_portfolio` (PROTOCOL §10): the paper broker's books and the day's risk budget.
enum PortfolioMethods {
    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(
            "get_portfolio",
            summary: "Cash, equity, positions with unrealized P&L, realized P&L, commissions and the risk budget.",
            params: NoParameters.self,
            result: [
                "type": "object",
                "required": [
                    "cash", "equity", "positions", "realized_pnl", "commissions", "orders", "risk_budget", "as_of_seq",
                ],
            ], handler: getPortfolio)
    }

    static func getPortfolio(_ params: NoParameters, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        let daemon = context.daemon
        // A cluster's book is the leader's: elsewhere the leader answers.
        if !daemon.mayTrade, let handOff = daemon.handOff {
            return .deferred { await handOff("get_portfolio", "{}", Daemon.leaderCallTimeout) }
        }
        let pipeline = daemon.pipeline
        return .deferred { .success(JSONWriter.encode(await portfolio(pipeline))) }
    }

    /// The `get_portfolio` result: the broker's books now.
    static func portfolio(_ pipeline: PipelineHost) async -> JSONValue {
        let books = await pipeline.agents.broker.books()
        let asOfSeq = pipeline.bus.statistics().lastSeq
        let now = Date()
        let used = pipeline.agents.riskBudget.committed(on: now)
        return portfolio(books, config: pipeline.agents.risk.config, riskUsed: used, now: now, asOfSeq: asOfSeq)
    }

    /// The `get_portfolio` object for `books` (positions sorted by symbol; a position with
    /// no mark has null `last_price` and `market_value`, and unrealized P&L 0).
    static func portfolio(
        _ books: Ledger, config: TradingConfig, riskUsed: Double, now: Date, asOfSeq: Int
    ) -> JSONValue {
        let equity = books.equity
        let positions: [JSONValue] = books.positions.keys.sorted().compactMap { symbol in
            guard let position = books.positions[symbol] else { return nil }
            let mark = books.marks[symbol]
            return [
                "symbol": JSONValue(symbol), "qty": JSONValue(position.quantity),
                "avg_price": JSONValue(Money(dollars: position.averagePrice).dollars),
                "last_price": mark.map { JSONValue($0.dollars) } ?? .null,
                "market_value": mark.map { JSONValue($0.saturatingMultiplied(by: position.quantity).dollars) } ?? .null,
                "unrealized_pnl": JSONValue(books.unrealizedPnL(of: symbol).dollars),
            ]
        }
        // The same balance risk sizes against: equity, else the configured default.
        let balance = equity.dollars.isFinite && equity > .zero ? equity.dollars : config.riskDefaultAccountBalance
        return [
            "cash": JSONValue(books.cash.dollars), "equity": JSONValue(equity.dollars), "positions": .array(positions),
            "realized_pnl": JSONValue(books.realizedPnL.dollars),
            "commissions": JSONValue(books.commissionPaid.dollars),
            "orders": JSONValue(books.orders),
            "risk_budget": [
                "day": JSONValue(RFC3339.day(of: now)), "used": JSONValue(riskUsed),
                "limit": JSONValue(config.riskMaxDailyLoss * balance),
            ],
            "as_of_seq": JSONValue(asOfSeq),
        ]
    }
}
