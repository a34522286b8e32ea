import Foundation
import Testing
import TradewireJSON

@testable import TradewireTrading

/// The kill switch in risk (PROTOCOL §12): halted rejects every order, reducing lets only
/// orders through that shrink a position, capped at its size.
@Suite struct RiskTradingStateTests {
    let day = utc("2025-06-13T15:00:00Z")
    let halted = TradingStateSnapshot(state: .halted, since: utc("2025-06-13T14:00:00Z"), reason: "feed broken")
    let reducing = TradingStateSnapshot(state: .reducing, since: utc("2025-06-13T14:00:00Z"), reason: "wind down")

    func agent(budget: RiskBudget = RiskBudget(), shorting: Bool = false) -> RiskAgent {
        var config = TradingConfig()
        config.allowShorting = shorting
        return RiskAgent(config: config, budget: budget, logger: quietLogger)
    }

    /// Flat closes at 100 with spread 1: stop distance 3, so sizing alone wants 666 shares.
    func flat(_ symbols: String...) -> [String: MarketData] {
        Dictionary(uniqueKeysWithValues: symbols.map { ($0, marketData($0, [Double](repeating: 100, count: 60))) })
    }

    @Test func haltedRejectsEveryOrderAndCommitsNothing() {
        let budget = RiskBudget()
        let d = agent(budget: budget).evaluate(
            [signal("A", .buy, confidence: 1), signal("B", .sell, confidence: 1), signal("C", .hold)],
            marketData: flat("A", "B", "C"), account: account(cash: 50_000, positions: ["B": 10]), on: day,
            commit: true, tradingState: halted)
        #expect(d.approved.map(\.symbol) == ["C"], "HOLD is approved as always")
        #expect(d.rejected.map(\.symbol) == ["A", "B"])
        #expect(d.rejected.allSatisfy { $0.rejectionReason == "trading halted: feed broken" && $0.qty == nil })
        #expect(budget.committed(on: day) == 0)
    }

    @Test func haltedOutranksEveryOtherReason() {
        // A confidence below the minimum and no market data would be rejected anyway; the
        // reason names the halt.
        let d = agent().evaluate(
            [signal("A", .buy, confidence: 0.01), signal("Z", .buy, confidence: 1)], marketData: flat("A"),
            equity: 100_000, on: day, commit: false, tradingState: halted)
        #expect(d.rejected.map(\.rejectionReason) == ["trading halted: feed broken", "trading halted: feed broken"])
    }

    @Test func reducingApprovesOnlyASellAgainstALongCappedAtItsSize() throws {
        let budget = RiskBudget()
        let d = agent(budget: budget).evaluate(
            [signal("A", .sell, confidence: 1), signal("A", .buy, confidence: 1), signal("B", .sell, confidence: 1)],
            marketData: flat("A", "B"), account: account(cash: 50_000, positions: ["A": 10]), on: day, commit: true,
            tradingState: reducing)
        let sell = try #require(d.approved.first)
        #expect(d.approved.count == 1 && sell.symbol == "A" && sell.action == .sell)
        #expect(sell.qty == 10, "capped at the position (sizing alone wants 666)")
        #expect(sell.riskAmount == 30)
        #expect(budget.committed(on: day) == 30)
        #expect(d.rejected.map(\.symbol) == ["A", "B"])
        #expect(d.rejected.allSatisfy { $0.rejectionReason == "trading reducing: wind down" })
    }

    @Test func reducingSeesWhatEarlierApprovalsAlreadySold() {
        let d = agent().evaluate(
            [
                signal("A", .sell, confidence: 0.01), signal("A", .sell, confidence: 1),
                signal("A", .sell, confidence: 1),
            ],
            marketData: flat("A"), account: account(cash: 50_000, positions: ["A": 10]), on: day, commit: false,
            tradingState: reducing)
        // The first fails its own rule (confidence), the second sells all 10, the third finds nothing left.
        #expect(d.approved.map(\.qty) == [10])
        #expect(
            d.rejected.map(\.rejectionReason) == ["Confidence 0.01 below minimum 0.30", "trading reducing: wind down"])
    }

    @Test func reducingLetsABuyCoverAShortWhenTheBookAllowsShorts() throws {
        let d = agent(shorting: true).evaluate(
            [signal("S", .buy, confidence: 1), signal("S", .sell, confidence: 1), signal("F", .sell, confidence: 1)],
            marketData: flat("S", "F"), account: account(cash: 50_000, positions: ["S": -5]), on: day, commit: false,
            tradingState: reducing)
        let cover = try #require(d.approved.first)
        #expect(d.approved.count == 1 && cover.action == .buy && cover.qty == 5)
        // Selling more of a short, or opening one on a flat book, does not reduce anything.
        #expect(d.rejected.map(\.symbol) == ["S", "F"])
    }

    @Test func reducingWithoutAnAccountRejectsEveryOrder() {
        let d = agent().evaluate(
            [signal("A", .sell, confidence: 1), signal("H", .hold)], marketData: flat("A", "H"), equity: 100_000,
            on: day, commit: false, tradingState: reducing)
        #expect(d.approved.map(\.symbol) == ["H"])
        #expect(d.rejected.first?.rejectionReason == "trading reducing: wind down")
    }

    @Test func activeChangesNothing() {
        let active = TradingStateSnapshot.initial(at: day)
        let signals = [signal("A", .buy, confidence: 1), signal("B", .sell, confidence: 1)]
        let holdings = account(cash: 50_000, positions: ["B": 10])
        let with = agent().evaluate(
            signals, marketData: flat("A", "B"), account: holdings, on: day, commit: false, tradingState: active)
        let without = agent().evaluate(signals, marketData: flat("A", "B"), account: holdings, on: day, commit: false)
        #expect(with.approved == without.approved && with.rejected == without.rejected)
        #expect(with.approved.count == 2)
    }

    // MARK: enforce (after remote risk groups)

    func approved(_ symbol: String, _ action: SignalAction, qty: Int, risk: Double) -> TradingSignal {
        var s = signal(symbol, action, approved: true, qty: qty)
        s.riskAmount = risk
        return s
    }

    @Test func enforceHaltedRevokesEveryApprovalAndFreesItsRisk() {
        let rejected = signal("R", .buy)
        let hold = signal("H", .hold, approved: true)
        let (signals, released) = RiskAgent.enforce(
            halted, on: [approved("A", .buy, qty: 5, risk: 15), hold, rejected, approved("B", .sell, qty: 2, risk: 6)],
            positions: ["B": 2])
        #expect(signals.map(\.approved) == [false, true, false, false])
        #expect(signals[0].rejectionReason == "trading halted: feed broken")
        #expect(signals[2] == rejected, "an already rejected signal keeps its own reason")
        #expect(released == 21)
    }

    @Test func enforceReducingCapsAtThePositionAndLowersTheRiskInProportion() {
        let (signals, released) = RiskAgent.enforce(
            reducing,
            on: [
                approved("A", .sell, qty: 30, risk: 90), approved("A", .sell, qty: 5, risk: 15),
                approved("B", .buy, qty: 4, risk: 12),
            ], positions: ["A": 10])
        #expect(signals.map(\.approved) == [true, false, false])
        #expect(signals[0].qty == 10 && signals[0].riskAmount == 30)
        #expect(signals[1].rejectionReason == "trading reducing: wind down")
        #expect(released == 60 + 15 + 12)
    }

    @Test func enforceActiveChangesNothing() {
        let list = [approved("A", .buy, qty: 5, risk: 15)]
        let (signals, released) = RiskAgent.enforce(.initial(at: day), on: list, positions: [:])
        #expect(signals == list && released == 0)
    }

    // MARK: the switch and the triggers

    @Test func theSwitchKeepsSinceWhenTheStateRepeats() throws {
        let start = utc("2025-06-13T10:00:00Z")
        let trading = TradingSwitch(.initial(at: start))
        #expect(trading.current == TradingStateSnapshot(state: .active, since: start, reason: "initial state"))
        let first = trading.set(.halted, reason: "one", at: utc("2025-06-13T11:00:00Z"))
        #expect(first.previous.state == .active && first.current.since == utc("2025-06-13T11:00:00Z"))
        let again = trading.set(.halted, reason: "two", at: utc("2025-06-13T12:00:00Z"))
        #expect(again.previous.state == .halted && again.current.state == .halted)
        #expect(again.current.since == utc("2025-06-13T11:00:00Z") && again.current.reason == "two")
        #expect(TradingState.allCases.map(\.gaugeValue) == [0, 1, 2])
        #expect(
            trading.current.jsonValue
                == ["state": "halted", "since": "2025-06-13T11:00:00.000000Z", "reason": "two"])
        #expect(try TradingStateSnapshot(json: trading.current.jsonValue, path: "") == trading.current)
    }

    @Test func errorsInARowFireOnceTheLimitIsReachedAndACleanIterationResets() {
        let triggers = HaltTriggers(errorIterations: 3)
        var watch = HaltWatch()
        #expect(watch.observe(equity: nil, firstError: "data X: boom", triggers: triggers) == nil)
        #expect(watch.observe(equity: nil, firstError: "data X: boom", triggers: triggers) == nil)
        #expect(watch.observe(equity: nil, firstError: nil, triggers: triggers) == nil)
        #expect(watch.errorsInARow == 0)
        for _ in 0..<2 { _ = watch.observe(equity: nil, firstError: "data X: boom", triggers: triggers) }
        let reason = watch.observe(equity: nil, firstError: "data X: boom", triggers: triggers)
        #expect(reason == "3 iterations in a row with errors (last: data X: boom)")
    }

    @Test func drawdownFiresAtThePercentBelowTheRunningPeak() {
        let triggers = HaltTriggers(drawdownPercent: 10)
        var watch = HaltWatch()
        #expect(watch.observe(equity: 100_000, firstError: nil, triggers: triggers) == nil)
        #expect(watch.observe(equity: 120_000, firstError: nil, triggers: triggers) == nil)
        #expect(watch.observe(equity: 108_001, firstError: nil, triggers: triggers) == nil)
        #expect(watch.peakEquity == 120_000)
        let reason = watch.observe(equity: 105_000, firstError: nil, triggers: triggers)
        #expect(reason == "drawdown 12.50% below peak 120000.00 (equity 105000.00, limit 10.00%)")
        watch.rebaseline(equity: 105_000)
        #expect(watch.peakEquity == 105_000 && watch.errorsInARow == 0)
        #expect(watch.observe(equity: 100_000, firstError: nil, triggers: triggers) == nil)
        // Without the trigger the peak is not followed.
        var off = HaltWatch()
        #expect(off.observe(equity: 1, firstError: nil, triggers: HaltTriggers()) == nil && off.peakEquity == nil)
    }
}
