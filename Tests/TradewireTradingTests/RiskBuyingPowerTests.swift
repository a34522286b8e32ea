import Foundation
import Testing

@testable import TradewireTrading

/// RiskAgent against the broker's account: cash, the position cap, and its own price.
@Suite struct RiskBuyingPowerTests {
    let day = utc("2025-06-13T15:00:00Z")

    func agent(budget: RiskBudget = RiskBudget(), _ configure: (inout TradingConfig) -> Void = { _ in }) -> RiskAgent {
        var config = TradingConfig()
        configure(&config)
        return RiskAgent(config: config, budget: budget, logger: quietLogger)
    }

    /// Flat closes at 100 with spread 1: stop distance 3.
    func flat(_ symbols: String...) -> [String: MarketData] {
        Dictionary(uniqueKeysWithValues: symbols.map { ($0, marketData($0, [Double](repeating: 100, count: 60))) })
    }

    @Test func buyIsReducedToTheCashAvailable() throws {
        // Equity 10 000 (1 000 cash + 90 × 100): sizing wants 66 shares; cash buys 9.
        let budget = RiskBudget()
        let d = agent(budget: budget).evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat("SPY"),
            account: account(cash: 1_000, positions: ["X": 90]), on: day, commit: true)
        let s = try #require(d.approved.first)
        #expect(s.qty == 9)  // 9 × 100.05 + 0.045 = 900.495 ≤ 1 000; 10 would cost 1 000.55
        #expect(s.riskAmount == 27)
        #expect(budget.committed(on: day) == 27)
    }

    @Test func laterBuysSeeTheCashEarlierOnesSpend() {
        let d = agent().evaluate(
            [signal("A", .buy, confidence: 1), signal("B", .buy, confidence: 1), signal("A", .sell, confidence: 1)],
            marketData: flat("A", "B"), account: account(cash: 1_000, positions: ["X": 90]), on: day, commit: false)
        #expect(d.approved.map(\.symbol) == ["A", "A"])
        #expect(d.approved.map(\.qty) == [9, 9])  // the SELL may sell what the BUY bought
        #expect(d.rejected.map(\.symbol) == ["B"])
        #expect(d.rejected.first?.rejectionReason == "insufficient buying power")
        #expect(RiskAgent.insufficientBuyingPower == "insufficient buying power")
    }

    @Test func onePositionStaysWithinItsShareOfEquity() throws {
        // Equity 100 000 with 150 SPY held at 100: the 20 % cap leaves room for 50 more.
        let holdings = account(cash: 85_000, positions: ["SPY": 150])
        let d = agent().evaluate(
            [signal("SPY", .buy, confidence: 1), signal("SPY", .buy, confidence: 1)], marketData: flat("SPY"),
            account: holdings, on: day, commit: false)
        #expect(d.approved.map(\.qty) == [50])
        #expect(d.rejected.map(\.rejectionReason) == ["insufficient buying power"])
        let looser = agent { $0.riskMaxPositionPct = 0.5 }.evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat("SPY"), account: holdings, on: day, commit: false)
        #expect(looser.approved.first?.qty == 350)  // 50 000 / 100 − 150, below the 666 risk allows
    }

    @Test func sellsAreNotLimitedByCash() throws {
        let d = agent().evaluate(
            [signal("SPY", .sell, confidence: 1)], marketData: flat("SPY"),
            account: account(cash: 0, positions: ["SPY": 10, "X": 90]), on: day, commit: true)
        #expect(try #require(d.approved.first).qty == 10)
        let broke = agent().evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat("SPY"),
            account: account(cash: 50, positions: ["X": 100]), on: day, commit: true)
        #expect(broke.rejected.first?.rejectionReason == "insufficient buying power")
    }

    @Test func sizingUsesTheMarketDataPriceNotTheSignals() throws {
        for clientPrice in [0.01, 1_000_000.0, nil] {
            let d = agent { $0.riskMaxPositionPct = 1 }.evaluate(
                [signal("SPY", .buy, confidence: 1, price: clientPrice)], marketData: flat("SPY"),
                account: account(cash: 10_000), on: day, commit: false)
            let s = try #require(d.approved.first)
            #expect(s.price == 100 && s.stopLoss == 97 && s.qty == 66)
        }
    }

    /// The default loop: AAPL, MSFT, GOOGL on seeded simulated data, $100 000, every stage
    /// in process. Before buying power, the first iteration put ~74 % of equity into one
    /// position and every later one logged `insufficient cash`.
    @Test func defaultLoopKeepsPositionsWithinTwentyPercentAndNeverOverdrawsCash() async throws {
        let config = TradingConfig()
        let budget = RiskBudget()
        let broker = PaperBroker(config: config)
        let data = DataAgent(provider: SimulatedMarketDataProvider(seed: 42), logger: quietLogger)
        let strategy = StrategyAgent(selector: config.strategySelector, logger: quietLogger)
        let quant = QuantAgent(
            minSharpe: config.quantMinSharpe, maxDrawdown: config.quantMaxDrawdown, logger: quietLogger)
        let risk = RiskAgent(config: config, budget: budget, logger: quietLogger)
        let execution = ExecutionAgent(broker: broker, budget: budget, logger: quietLogger)
        var executed = 0
        // A minute apart on one day (the loop's default interval), then across the following days.
        let start = utc("2025-06-02T14:30:00Z")
        let dates =
            (0..<6).map { start.addingTimeInterval(Double($0) * 60) }
            + (1..<15).map { start.addingTimeInterval(Double($0) * 86_400) }
        for (n, asOf) in dates.enumerated() {
            let fetched = await data.fetch(symbols: ["AAPL", "MSFT", "GOOGL"], asOf: asOf)
            let prices = ExecutionAgent.referencePrices(from: fetched.marketData)
            await broker.mark(prices)
            let signals = strategy.generate(marketData: fetched.marketData, override: nil, idPrefix: "i\(n)", now: asOf)
            let validated = quant.validate(signals.signals, marketData: fetched.marketData)
            let before = await broker.account()
            let decision = risk.evaluate(
                validated, marketData: fetched.marketData, account: before, on: asOf, commit: true)
            let results = await execution.execute(
                decision.approved, referencePrices: prices, asOf: asOf, dryRun: false, now: asOf)
            for result in results {
                #expect(result.executed, "iteration \(n) \(result.signal.symbol): \(result.error ?? "")")
                #expect(result.error?.hasPrefix("insufficient cash") != true)
            }
            executed += results.filter(\.executed).count
            let after = await broker.account()
            #expect(after.cash >= .zero)
            // Every position is within the cap on the first day (one set of prices); afterwards, every
            // position a BUY reached (held positions drift with prices across days).
            let bought = Set(results.filter { $0.executed && $0.side == .buy }.map(\.signal.symbol))
            for (symbol, qty) in after.positions where n < 6 || bought.contains(symbol) {
                let value = Double(qty) * (prices[symbol] ?? 0)
                #expect(
                    value <= config.riskMaxPositionPct * before.equity.dollars + 1e-6,
                    "iteration \(n): \(symbol) = \(value) of equity \(before.equity.dollars)")
            }
        }
        #expect(executed > 0)
    }
}
