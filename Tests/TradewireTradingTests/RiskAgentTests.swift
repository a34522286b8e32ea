import Foundation
import Testing

@testable import TradewireTrading

@Suite struct RiskAgentTests {
    let day1 = utc("2025-06-13T15:00:00Z")
    let day2 = utc("2025-06-14T00:00:01Z")

    func agent(_ configure: (inout TradingConfig) -> Void = { _ in }, budget: RiskBudget = RiskBudget()) -> RiskAgent {
        var config = TradingConfig()
        configure(&config)
        return RiskAgent(config: config, budget: budget, logger: quietLogger)
    }

    /// 60 flat bars: TR = 2 (spread 1) → ATR 2 → stop distance 3.
    let flat = ["SPY": marketData("SPY", [Double](repeating: 100, count: 60), spread: 1)]

    @Test func defaultsAndCustomThresholds() {
        let config = TradingConfig()
        #expect(config.riskMaxPerTrade == 0.02 && config.riskMaxDailyLoss == 0.05 && config.riskMinConfidence == 0.3)
        #expect(config.riskMaxQty == 1000 && config.riskDefaultAccountBalance == 10_000)
        #expect(config.quantMinSharpe == 0.8 && config.quantMaxDrawdown == 0.15)
        #expect(config.strategySelector == .regime && config.barsPerSymbol == 252 && config.dataCacheTTLSeconds == 60)
        let custom = agent { $0.riskMinConfidence = 0.5 }
        let d = custom.evaluate(
            [signal("SPY", .buy, confidence: 0.45)], marketData: flat, equity: 10_000, on: day1, commit: true)
        #expect(d.rejected.first?.rejectionReason == "Confidence 0.45 below minimum 0.50")
    }

    @Test func lowConfidenceRejected() {
        let d = agent().evaluate(
            [signal("SPY", .buy, confidence: 0.2)], marketData: flat, equity: 10_000, on: day1, commit: true)
        #expect(d.approved.isEmpty)
        let rejected = d.rejected[0]
        #expect(rejected.approved == false)
        #expect(rejected.rejectionReason == "Confidence 0.20 below minimum 0.30")
        #expect(rejected.rejectionReason?.firstMatch(of: /Confidence.*below minimum/) != nil)
    }

    @Test func sizingWithTenThousand() throws {
        let budget = RiskBudget()
        let d = agent(budget: budget).evaluate(
            [signal("SPY", .buy, confidence: 0.8)], marketData: flat, equity: 10_000, on: day1, commit: true)
        let s = try #require(d.approved.first)
        // risk = 0.02·10 000·0.8 = 160; stop 3 → qty 53; actual 159
        #expect(s.qty == 53)
        #expect(s.riskAmount == 159)
        #expect(s.stopLoss == 97)  // price 100 − 3
        #expect(s.approved && s.rejectionReason == nil)
        #expect(s.qty! > 0 && s.qty! <= 1000)
        #expect(budget.committed(on: day1) == 159)
        // SELL puts the stop above the price; an existing stop is kept
        var sell = signal("SPY", .sell, confidence: 1)
        let sized = agent().evaluate([sell], marketData: flat, equity: 10_000, on: day1, commit: true).approved[0]
        #expect(sized.stopLoss == 103 && sized.qty == 66)  // 200/3
        sell.stopLoss = 101.5
        #expect(
            agent().evaluate([sell], marketData: flat, equity: 10_000, on: day1, commit: true).approved[0].stopLoss
                == 101.5)
    }

    @Test func maxQtyRespectedOnLargeBalance() throws {
        let tight = ["SPY": marketData("SPY", [Double](repeating: 100, count: 60), spread: 0.05)]  // stop 0.15
        let d = agent { $0.riskMaxQty = 100 }.evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: tight, equity: 1_000_000, on: day1, commit: true)
        let s = try #require(d.approved.first)
        #expect(s.qty == 100)
        #expect(s.riskAmount! <= 0.02 * 1_000_000)
        #expect(abs(s.riskAmount! - 15) < 1e-9)
    }

    @Test func noHistoricalData() {
        let d = agent().evaluate([signal("NONE", .buy)], marketData: flat, equity: 10_000, on: day1, commit: true)
        #expect(d.rejected.first?.rejectionReason == "No historical data for position sizing")
    }

    @Test func oneShareBeyondMaxRiskIsRejected() {
        // stop 3 but max risk per trade 0.02·100 = 2 → even 1 share is too much
        let d = agent().evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat, equity: 100, on: day1, commit: true)
        #expect(d.rejected.first?.rejectionReason?.contains("exceeds max risk") == true)
    }

    @Test func dailyLimitRejection() {
        let budget = RiskBudget()
        budget.commit(400, on: day1)  // 4 % of 10 000 already committed
        let d = agent(budget: budget).evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat, equity: 10_000, on: day1, commit: true)
        // 66 shares × 3 = 198 → 598 > 500
        #expect(
            d.rejected.first?.rejectionReason
                == "Would exceed daily loss limit: committed 400.00 + 198.00 > 500.00 (5.00% of equity)")
        #expect(budget.committed(on: day1) == 400)
    }

    @Test func budgetResetsOnTheNextUTCDay() {
        let budget = RiskBudget()
        let risk = agent(budget: budget)
        let three = ["A", "B", "C"].map { signal($0, .buy, confidence: 1) }
        let data = Dictionary(
            uniqueKeysWithValues: ["A", "B", "C"].map { ($0, marketData($0, [Double](repeating: 100, count: 60))) })
        let first = risk.evaluate(three, marketData: data, equity: 10_000, on: day1, commit: true)
        #expect(first.approved.map(\.symbol) == ["A", "B"])  // 198 + 198; a third would reach 594 > 500
        #expect(first.rejected.map(\.symbol) == ["C"])
        #expect(budget.committed(on: day1) == 396)
        #expect(risk.evaluate([three[2]], marketData: data, equity: 10_000, on: day1, commit: true).approved.isEmpty)
        let next = risk.evaluate([three[2]], marketData: data, equity: 10_000, on: day2, commit: true)
        #expect(next.approved.map(\.symbol) == ["C"])
        #expect(budget.committed(on: day2) == 198)
        #expect(budget.committed(on: day1) == 0)  // that day is gone
        budget.reset()
        #expect(budget.committed(on: day2) == 0)
        let first2 = budget.reserve(300, limit: 500, on: day2)
        let second2 = budget.reserve(300, limit: 500, on: day2)
        #expect(first2 == (true, 0) && second2 == (false, 300))
        #expect(budget.committed(on: day2) == 300)
    }

    @Test func holdPassesThroughApproved() {
        var hold = signal("SPY", .hold, confidence: 0.1)
        hold.rejectionReason = "stale"
        let d = agent().evaluate([hold], marketData: [:], equity: 10_000, on: day1, commit: true)
        #expect(d.rejected.isEmpty)
        #expect(d.approved.count == 1)
        #expect(d.approved[0].approved && d.approved[0].qty == nil && d.approved[0].rejectionReason == nil)
    }

    @Test func sellsNeedSharesWhenShortingIsDisabled() {
        let data = [
            "A": marketData("A", [Double](repeating: 100, count: 60)),
            "B": marketData("B", [Double](repeating: 100, count: 60)),
        ]
        let sells = [signal("A", .sell, confidence: 1), signal("B", .sell, confidence: 1)]
        let d = agent().evaluate(
            sells, marketData: data, account: account(cash: 10_000, positions: ["B": 7]), on: day1, commit: false)
        #expect(d.rejected.map(\.symbol) == ["A"])
        #expect(d.rejected.first?.rejectionReason == "No position to sell (shorting disabled)")
        #expect(d.approved.map(\.symbol) == ["B"])
        #expect(d.approved.first?.qty == 7)
        // Without an account (no broker) the original's behaviour is kept.
        let unchecked = agent().evaluate(sells, marketData: data, equity: 10_000, on: day1, commit: false)
        #expect(unchecked.rejected.isEmpty)
    }

    @Test func dryRunLeavesTheBudgetUnchanged() {
        let budget = RiskBudget()
        budget.commit(100, on: day1)
        let three = ["A", "B", "C"].map { signal($0, .buy, confidence: 1) }
        let data = Dictionary(
            uniqueKeysWithValues: ["A", "B", "C"].map { ($0, marketData($0, [Double](repeating: 100, count: 60))) })
        let d = agent(budget: budget).evaluate(three, marketData: data, equity: 10_000, on: day1, commit: false)
        // sequential within the call: 100 + 198 + 198 = 496 ≤ 500; a third would exceed
        #expect(d.approved.map(\.symbol) == ["A", "B"])
        #expect(d.rejected.map(\.symbol) == ["C"])
        #expect(budget.committed(on: day1) == 100)
    }

    @Test func ordersAndCountsAreKept() {
        let signals = [
            signal("SPY", .hold), signal("SPY", .buy, confidence: 0.1), signal("SPY", .sell, confidence: 0.9),
        ]
        let d = agent().evaluate(signals, marketData: flat, equity: 50_000, on: day1, commit: true)
        #expect(d.approved.count + d.rejected.count == 3)
        #expect(d.approved.map(\.action) == [.hold, .sell])
        #expect(d.rejected.map(\.action) == [.buy])
    }

    @Test func nonPositiveEquityFallsBackToTheDefaultBalance() throws {
        let d = agent().evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat, equity: .nan, on: day1, commit: false)
        #expect(try #require(d.approved.first).qty == 66)  // 0.02·10 000 / 3
    }

    @Test func atrFallbackWithFewBars() {
        // 5 bars, each high − low = 2 → mean range 2 → stop 3
        let short = ["SPY": marketData("SPY", [Double](repeating: 100, count: 5), spread: 1)]
        let d = agent().evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: short, equity: 10_000, on: day1, commit: false)
        #expect(d.approved.first?.qty == 66)
    }
}
