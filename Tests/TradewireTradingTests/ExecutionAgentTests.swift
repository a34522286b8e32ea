import Foundation
import Testing

@testable import TradewireTrading

@Suite struct ExecutionAgentTests {
    let now = utc("2025-06-13T15:00:00Z")

    var signals: [TradingSignal] {
        [
            signal("TSLA", .sell, price: 200, approved: true, qty: 5),  // no position → fails
            signal("AAPL", .buy, price: 100, approved: true, qty: 10),
            signal("MSFT", .hold, price: 300, approved: true),
            signal("GOOG", .buy, price: 150, approved: false, qty: 3),  // not approved → ignored
            signal("AMZN", .buy, price: 50, approved: true),  // qty nil → 1
        ]
    }

    /// The iteration's last closes (the signals' own prices are never used).
    let prices: [String: Double] = ["TSLA": 200, "AAPL": 100, "MSFT": 300, "GOOG": 150, "AMZN": 50]

    @Test func onlyApprovedNonHoldSignalsExecute() async {
        let broker = PaperBroker(startingCash: 100_000, slippageBps: 5, commissionPerShare: 0.005, allowShorting: false)
        let agent = ExecutionAgent(broker: broker, budget: RiskBudget(), logger: quietLogger)
        let results = await agent.execute(signals, referencePrices: prices, asOf: now, dryRun: false, now: now)
        #expect(results.map(\.signal.symbol) == ["AAPL", "AMZN", "TSLA"])
        #expect(results.map(\.executed) == [true, true, false])
        #expect(results[0].orderID == "paper-000001" && results[0].fillPrice == 100.05 && results[0].quantity == 10)
        #expect(results[0].side == .buy && results[0].commission == 0.05 && results[0].executionTime == now)
        #expect(results[1].orderID == "paper-000002" && results[1].quantity == 1)
        #expect(results[2].orderID == nil && results[2].fillPrice == nil && results[2].side == .sell)
        #expect(results[2].error?.hasPrefix("no position to sell (shorting disabled)") == true)
        #expect(results.allSatisfy { $0.executionTime == now })
        let account = await broker.account()
        #expect(account.positions == ["AAPL": 10, "AMZN": 1])
        #expect(account.orders == 2)
    }

    @Test func dryRunChangesNothing() async {
        let broker = PaperBroker(startingCash: 100_000, slippageBps: 5, commissionPerShare: 0.005, allowShorting: false)
        let before = await broker.account()
        let results = await ExecutionAgent(broker: broker, budget: RiskBudget(), logger: quietLogger).execute(
            signals, referencePrices: prices, asOf: now, dryRun: true, now: now)
        #expect(results.map(\.signal.symbol) == ["AAPL", "AMZN", "TSLA"])
        #expect(results.allSatisfy { !$0.executed && $0.orderID == nil && $0.error == nil })
        #expect(results.map(\.fillPrice) == [100.05, 50.025, 199.9])
        #expect(results.map(\.commission) == [0.05, 0.005, 0.025])
        #expect(await broker.account() == before)
    }

    @Test func missingReferenceFallsBackToTheLastMark() async {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        await broker.mark(["SPY": 500])
        let agent = ExecutionAgent(broker: broker, budget: RiskBudget(), logger: quietLogger)
        let results = await agent.execute(
            [signal("SPY", .buy, price: nil, approved: true, qty: 2), signal("QQQ", .buy, price: nil, approved: true)],
            referencePrices: [:], asOf: now, dryRun: false, now: now)
        #expect(results.map(\.signal.symbol) == ["QQQ", "SPY"])
        #expect(results[0].executed == false && results[0].error == "no valid reference price for QQQ")
        #expect(results[1].executed && results[1].fillPrice == 500)
        #expect(await agent.execute([], referencePrices: [:], asOf: now, dryRun: false, now: now).isEmpty)
        for dryRun in [true, false] {
            let zero = await agent.execute(
                [signal("SPY", .buy, price: 500, approved: true, qty: 0)], referencePrices: ["SPY": 500], asOf: now,
                dryRun: dryRun, now: now)
            #expect(zero.first?.error == "quantity must be positive, got 0" && zero.first?.executed == false)
        }
    }
}

@Suite struct ExecutionPriceAndBudgetTests {
    let now = utc("2025-06-13T15:00:00Z")

    @Test func theBrokerFillsAtItsOwnPriceNotTheSignals() async {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        let agent = ExecutionAgent(broker: broker, budget: RiskBudget(), logger: quietLogger)
        let cheap = [signal("SPY", .buy, price: 0.01, approved: true, qty: 2)]
        let filled = await agent.execute(cheap, referencePrices: ["SPY": 100], asOf: now, dryRun: false, now: now)
        #expect(filled.first?.executed == true && filled.first?.fillPrice == 100)
        // No reference: the broker's last mark (100, from that fill), still not the signal's price.
        let marked = await agent.execute(cheap, referencePrices: [:], asOf: now, dryRun: true, now: now)
        #expect(marked.first?.fillPrice == 100)
        // Neither a reference nor a mark: refused, whatever the signal says.
        let unknown = [signal("QQQ", .buy, price: 300, approved: true, qty: 1)]
        let refused = await agent.execute(unknown, referencePrices: ["QQQ": .nan], asOf: now, dryRun: false, now: now)
        #expect(refused.first?.error == "no valid reference price for QQQ")
        #expect(await broker.account().cash == Money(dollars: 9_800))
    }

    @Test func aRefusedOrderGivesItsRiskBudgetBack() async throws {
        let budget = RiskBudget()
        budget.commit(50, on: now)
        // Risk sizes against a stale account with plenty of cash; the broker has $1 000.
        let risk = RiskAgent(config: TradingConfig(), budget: budget, logger: quietLogger)
        let flat = ["SPY": marketData("SPY", [Double](repeating: 100, count: 60))]
        let decision = risk.evaluate(
            [signal("SPY", .buy, confidence: 1)], marketData: flat, account: account(cash: 100_000), on: now,
            commit: true)
        let approved = try #require(decision.approved.first)
        #expect(budget.committed(on: now) == 50 + approved.riskAmount!)
        let broker = PaperBroker(startingCash: 1_000, slippageBps: 5, commissionPerShare: 0.005, allowShorting: false)
        let agent = ExecutionAgent(broker: broker, budget: budget, logger: quietLogger)
        let results = await agent.execute(
            decision.approved, referencePrices: ["SPY": 100], asOf: now, dryRun: false, now: now)
        #expect(results.first?.error?.hasPrefix("insufficient cash") == true)
        #expect(budget.committed(on: now) == 50)
    }

    @Test func invalidOrdersReleaseAndDryRunsDoNot() async {
        let budget = RiskBudget()
        budget.commit(100, on: now)
        let broker = PaperBroker(startingCash: 1_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        let agent = ExecutionAgent(broker: broker, budget: budget, logger: quietLogger)
        var noPrice = signal("QQQ", .buy, approved: true, qty: 1)
        noPrice.riskAmount = 30
        var zero = signal("SPY", .buy, approved: true, qty: 0)
        zero.riskAmount = 20
        _ = await agent.execute([noPrice, zero], referencePrices: ["SPY": 10], asOf: now, dryRun: true, now: now)
        #expect(budget.committed(on: now) == 100)
        _ = await agent.execute([noPrice, zero], referencePrices: ["SPY": 10], asOf: now, dryRun: false, now: now)
        #expect(budget.committed(on: now) == 50)
    }

    @Test func releaseNeverGoesBelowZeroNorTouchesAnotherDay() {
        let budget = RiskBudget()
        budget.commit(100, on: now)
        budget.release(30, on: now)
        #expect(budget.committed(on: now) == 70)
        budget.release(30, on: now.addingTimeInterval(86_400))  // another day: nothing to give back
        #expect(budget.committed(on: now) == 70)
        budget.release(.nan, on: now)
        budget.release(-5, on: now)
        #expect(budget.committed(on: now) == 70)
        budget.release(1_000, on: now)
        #expect(budget.committed(on: now) == 0)
    }
}
