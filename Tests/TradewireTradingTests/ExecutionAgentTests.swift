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

    @Test func onlyApprovedNonHoldSignalsExecute() async {
        let broker = PaperBroker(startingCash: 100_000, slippageBps: 5, commissionPerShare: 0.005, allowShorting: false)
        let agent = ExecutionAgent(broker: broker, logger: quietLogger)
        let results = await agent.execute(signals, dryRun: false, now: now)
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
        let results = await ExecutionAgent(broker: broker, logger: quietLogger).execute(signals, dryRun: true, now: now)
        #expect(results.map(\.signal.symbol) == ["AAPL", "AMZN", "TSLA"])
        #expect(results.allSatisfy { !$0.executed && $0.orderID == nil && $0.error == nil })
        #expect(results.map(\.fillPrice) == [100.05, 50.025, 199.9])
        #expect(results.map(\.commission) == [0.05, 0.005, 0.025])
        #expect(await broker.account() == before)
    }

    @Test func missingPriceFallsBackToTheLastMark() async {
        let broker = PaperBroker(startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, allowShorting: false)
        await broker.mark(["SPY": 500])
        let agent = ExecutionAgent(broker: broker, logger: quietLogger)
        let results = await agent.execute(
            [signal("SPY", .buy, price: nil, approved: true, qty: 2), signal("QQQ", .buy, price: nil, approved: true)],
            dryRun: false, now: now)
        #expect(results.map(\.signal.symbol) == ["QQQ", "SPY"])
        #expect(results[0].executed == false && results[0].error == "no valid reference price for QQQ")
        #expect(results[1].executed && results[1].fillPrice == 500)
        #expect(await agent.execute([], dryRun: false, now: now).isEmpty)
        for dryRun in [true, false] {
            let zero = await agent.execute(
                [signal("SPY", .buy, price: 500, approved: true, qty: 0)], dryRun: dryRun, now: now)
            #expect(zero.first?.error == "quantity must be positive, got 0" && zero.first?.executed == false)
        }
    }
}
