import Foundation
import Synchronization
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

/// One orchestrator with its agents and the kill switch's controller.
private struct KillSwitchRig {
    let bus = EventBus(historyCapacity: 100_000, logger: quietLogger, clock: { fixedNow })
    let agents: TradingAgents
    let controller: TradingStateController
    let orchestrator: any Orchestrator

    init(
        _ mode: Mode, seed: UInt64 = 42, symbols: [String] = syntheticSymbols(40),
        triggers: HaltTriggers = HaltTriggers(),
        provider: (any MarketDataProvider)? = nil, handlers: [PipelineStage: StageHandlers] = [:]
    ) {
        agents = TradingAgents(
            config: TradingConfig(), provider: provider ?? SimulatedMarketDataProvider(seed: seed), logger: quietLogger)
        agents.tradingSwitch.restore(.initial(at: fixedNow))
        controller = TradingStateController(
            agents: agents, bus: bus, journal: nil, triggers: triggers, clock: { fixedNow }, logger: quietLogger)
        let source = FixedHandlers(byStage: handlers)
        switch mode {
        case .sequential:
            orchestrator = SequentialOrchestrator(
                bus: bus, agents: agents, stageHandlers: source, defaultSymbols: symbols, iterationIDPrefix: "k",
                clock: { fixedNow }, tradingState: controller, logger: quietLogger)
        case .eventDriven:
            orchestrator = EventDrivenOrchestrator(
                bus: bus, agents: agents, stageHandlers: source, defaultSymbols: symbols, iterationIDPrefix: "k",
                clock: { fixedNow }, tradingState: controller, logger: quietLogger)
        }
    }

    /// The `trading_state_changed` events published, oldest first.
    var changes: [JSONValue] {
        bus.history(matching: try? EventPattern(TradingStateController.changedEventType)).records.compactMap {
            $0.event.data(as: JSONValue.self)
        }
    }

    var records: [JournalRecord] { bus.journalRecords }
}

/// From the second iteration on, every BUY becomes a SELL and every SELL a BUY: the first
/// iteration buys, the second then has sells against what it bought.
private let flipper = ScriptedHandler(.strategy, "flip") { call in
    guard case .signals(let signals)? = call.output else { return .success(StageReply(.signals([]))) }
    guard call.iteration >= 2 else { return .success(StageReply(.signals(signals))) }
    return .success(
        StageReply(
            .signals(
                signals.map { signal in
                    var flipped = signal
                    flipped.action = signal.action == .buy ? .sell : signal.action == .sell ? .buy : .hold
                    flipped.stopLoss = nil
                    flipped.takeProfit = nil
                    return flipped
                })))
}

/// The kill switch in the pipeline (PROTOCOL §12): both orchestrators obey it alike, a risk
/// group cannot get round it, and the triggers halt by themselves.
@Suite struct KillSwitchPipelineTests {
    @Test(arguments: [7, 42] as [UInt64])
    func bothOrchestratorsObeyTheTradingStateAlike(seed: UInt64) async throws {
        let rigs = [
            KillSwitchRig(.sequential, seed: seed, handlers: [.strategy: StageHandlers(after: [flipper])]),
            KillSwitchRig(.eventDriven, seed: seed, handlers: [.strategy: StageHandlers(after: [flipper])]),
        ]
        var results: [[IterationResult]] = [[], []]
        for (state, reason) in [(TradingState.active, "go"), (.reducing, "wind down"), (.halted, "stop")] {
            for (index, rig) in rigs.enumerated() {
                let before = await rig.agents.broker.account().positions
                await rig.controller.set(state, reason: reason, by: .operator)
                let result = try await rig.orchestrator.run(IterationRequest())
                results[index].append(result)
                let orders = result.approvedSignals.filter { $0.action != .hold }
                switch state {
                case .active:
                    #expect(orders.contains { $0.action == .buy }, "the first iteration buys")
                case .reducing:
                    #expect(!orders.isEmpty, "some sells reduce what the first iteration bought")
                    for order in orders {
                        let held = before[order.symbol] ?? 0
                        #expect(order.action == .sell && held > 0 && (order.qty ?? 0) <= held, "\(order)")
                    }
                    #expect(result.rejectedSignals.contains { $0.rejectionReason == "trading reducing: wind down" })
                case .halted:
                    #expect(orders.isEmpty && result.executedCount == 0)
                    let rejected = result.rejectedSignals.filter { $0.action != .hold }
                    #expect(!rejected.isEmpty && rejected.allSatisfy { $0.rejectionReason == "trading halted: stop" })
                }
            }
        }
        for (a, b) in zip(results[0], results[1]) {
            #expect(a.iteration == b.iteration)
            #expect(Decisions(a) == Decisions(b))
        }
        #expect(rigs[0].changes == rigs[1].changes)
        #expect(rigs[0].changes.map { $0["by"] } == ["operator", "operator", "operator"])
    }

    @Test(arguments: Mode.allCases)
    func aHaltDuringARiskGroupsCallStillRejectsEveryOrder(mode: Mode) async throws {
        let switchBox = Mutex<TradingSwitch?>(nil)
        let halting = ScriptedHandler(.risk, "slow") { call in
            // The operator halts while the group is thinking; the group approves as it was given.
            switchBox.withLock { $0 }?.set(.halted, reason: "mid-call", at: fixedNow)
            guard case .signals(let signals)? = call.output else { return .success(StageReply(.signals([]))) }
            return .success(StageReply(.signals(signals)))
        }
        let rig = KillSwitchRig(mode, handlers: [.risk: StageHandlers(after: [halting])])
        switchBox.withLock { $0 = rig.agents.tradingSwitch }
        let result = try await rig.orchestrator.run(IterationRequest(strategy: .trendFollowing))
        #expect(halting.calls.count == 1)
        let call = try #require(halting.calls.first)
        #expect((call.output?.signals ?? []).contains { $0.approved && $0.action != .hold }, "the built-in approved")
        #expect(result.approvedSignals.allSatisfy { $0.action == .hold })
        #expect(result.executedCount == 0 && result.executionResults.isEmpty)
        #expect(result.rejectedSignals.contains { $0.rejectionReason == "trading halted: mid-call" })
        #expect(rig.agents.riskBudget.committed(on: fixedNow) == 0, "the revoked approvals gave their risk back")
    }

    @Test(arguments: Mode.allCases)
    func errorsInARowHaltByTrigger(mode: Mode) async throws {
        let rig = KillSwitchRig(
            mode, symbols: ["AAPL"], triggers: HaltTriggers(errorIterations: 2), provider: FailingProvider())
        for dryRun in [false, true, true] {
            await #expect(throws: PipelineError.self) {
                try await rig.orchestrator.run(IterationRequest(dryRun: dryRun))
            }
        }
        #expect(rig.agents.tradingSwitch.current.state == .active, "dry runs are not counted")
        #expect(rig.controller.haltWatch.errorsInARow == 1)
        await #expect(throws: PipelineError.self) { try await rig.orchestrator.run(IterationRequest()) }
        let state = rig.agents.tradingSwitch.current
        #expect(state.state == .halted)
        #expect(state.reason.hasPrefix("2 iterations in a row with errors (last: data AAPL: "), "\(state.reason)")
        #expect(
            rig.changes == [
                [
                    "state": "halted", "previous": "active", "reason": JSONValue(state.reason), "by": "trigger",
                    "since": JSONValue(RFC3339.string(from: state.since)),
                ]
            ])
        // Already halted: more errors announce nothing more.
        await #expect(throws: PipelineError.self) { try await rig.orchestrator.run(IterationRequest()) }
        #expect(rig.changes.count == 1)
    }

    @Test(arguments: Mode.allCases)
    func aDrawdownBelowThePeakHaltsByTrigger(mode: Mode) async throws {
        let rig = KillSwitchRig(mode, triggers: HaltTriggers(drawdownPercent: 5))
        let first = try await rig.orchestrator.run(IterationRequest(strategy: .trendFollowing))
        #expect(first.executedCount > 0, "the first iteration buys")
        let peak = try #require(rig.controller.haltWatch.peakEquity)
        // The market falls 90 % for everything held: marking at those closes sinks equity.
        let held = await rig.agents.broker.account().positions
        var crashed: [String: MarketData] = [:]
        for (symbol, data) in first.marketData where held[symbol] != nil {
            var bars = data.bars
            let last = bars[bars.count - 1]
            bars[bars.count - 1] = Bar(
                timestamp: last.timestamp, open: last.open * 0.1, high: last.open * 0.1, low: last.close * 0.1,
                close: last.close * 0.1, volume: last.volume)
            crashed[symbol] = MarketData(symbol: symbol, bars: bars)
        }
        _ = try await rig.orchestrator.run(IterationRequest(marketData: crashed, dryRun: true))
        #expect(rig.agents.tradingSwitch.current.state == .active, "a dry run marks nothing and counts nothing")
        _ = try await rig.orchestrator.run(IterationRequest(marketData: crashed))
        let state = rig.agents.tradingSwitch.current
        #expect(state.state == .halted)
        #expect(
            state.reason.hasPrefix("drawdown ") && state.reason.contains("below peak \(String(format: "%.2f", peak))"))
        #expect(rig.changes.last?["by"] == "trigger")
        // The operator resumes: the triggers start over from today's equity.
        await rig.controller.set(.active, reason: "accepted", by: .operator)
        let equity = await rig.agents.broker.account().equity.dollars
        #expect(rig.controller.haltWatch.peakEquity == equity)
    }

    @Test func aRepeatedSettingIsAnnouncedAndKeepsSince() async throws {
        let rig = KillSwitchRig(.sequential)
        let first = await rig.controller.set(.halted, reason: "one", by: .operator)
        let again = await rig.controller.set(.halted, reason: "two", by: .operator)
        #expect(first.previous.state == .active && again.previous.state == .halted)
        #expect(again.current.since == first.current.since && again.current.reason == "two")
        #expect(rig.changes.map { $0["previous"] } == ["active", "halted"])
        #expect(rig.changes.map { $0["reason"] } == ["one", "two"])
    }

    @Test func theFoldFollowsTheTradingStateThroughACheckpoint() async throws {
        let rig = KillSwitchRig(.eventDriven)
        _ = try await rig.orchestrator.run(IterationRequest())
        await rig.controller.set(.reducing, reason: "wind down", by: .operator)
        await rig.controller.set(.reducing, reason: "still", by: .operator)
        let records = rig.records
        var fold = JournalFold(startingCash: Money(dollars: 100_000))
        for record in records { fold.apply(record) }
        let state = try #require(fold.tradingState)
        #expect(state.state == .reducing && state.reason == "still")
        #expect(state.since == rig.agents.tradingSwitch.current.since, "a repeat keeps since")
        let resumed = try JournalFold(checkpoint: try JSONParser.parse(JSONWriter.encode(fold.checkpointJSON)))
        #expect(resumed.tradingState == fold.tradingState)
        var before = JournalFold(startingCash: Money(dollars: 100_000))
        for record in records where record.type != TradingStateController.changedEventType { before.apply(record) }
        #expect(before.tradingState == nil)
    }

    @Test func aReplayObeysTheStateOfItsTimeNotToday() async throws {
        let rig = KillSwitchRig(.sequential)
        let account = await rig.agents.broker.account()
        let live = try await rig.orchestrator.run(IterationRequest(strategy: .trendFollowing))
        #expect(live.approvedSignals.contains { $0.action != .hold })
        await rig.controller.set(.halted, reason: "today", by: .operator)
        var request = IterationRequest(marketData: live.marketData, strategy: .trendFollowing, dryRun: true)
        request.replay = ReplayBasis(of: "k-1", account: account, committedRisk: 0, asOf: fixedNow)
        let replayed = try await rig.orchestrator.run(request)
        #expect(
            replayed.approvedSignals.map(\.symbol) == live.approvedSignals.map(\.symbol), "active then, halted today")
        request.replay?.tradingState = TradingStateSnapshot(state: .halted, since: fixedNow, reason: "then")
        let haltedThen = try await rig.orchestrator.run(request)
        #expect(haltedThen.approvedSignals.allSatisfy { $0.action == .hold })
    }

    @Test func haltTriggersLayerLikeTheOtherSettings() throws {
        #expect(PipelineConfiguration().haltTriggers.isEmpty)
        #expect(
            PipelineConfiguration.environmentKeys.contains { $0 == ("HALT_ON_DRAWDOWN_PCT", "halt_on_drawdown_pct") })
        #expect(PipelineConfiguration.environmentKeys.contains { $0 == ("HALT_ON_ERRORS", "halt_on_errors") })
        let path = NSTemporaryDirectory() + "tw-halt-\(getpid()).json"
        try #"{"halt_on_drawdown_pct": 12.5, "halt_on_errors": 3}"#.write(
            toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try PipelineConfiguration.load(configFile: path, environment: [:])
        #expect(file.haltTriggers == HaltTriggers(drawdownPercent: 12.5, errorIterations: 3))
        let env = try PipelineConfiguration.load(configFile: path, environment: ["HALT_ON_ERRORS": "1"])
        #expect(env.haltTriggers == HaltTriggers(drawdownPercent: 12.5, errorIterations: 1))
        var flags = env
        try flags.set("halt_on_drawdown_pct", "100", source: "--halt-on-drawdown")
        #expect(flags.haltTriggers.drawdownPercent == 100)
    }

    @Test(arguments: [
        ("HALT_ON_DRAWDOWN_PCT", "0"), ("HALT_ON_DRAWDOWN_PCT", "100.5"), ("HALT_ON_DRAWDOWN_PCT", "-1"),
        ("HALT_ON_DRAWDOWN_PCT", "nan"), ("HALT_ON_ERRORS", "0"), ("HALT_ON_ERRORS", "1000001"),
        ("HALT_ON_ERRORS", "2.5"),
    ])
    func haltTriggersOutOfRangeAreRefused(name: String, text: String) {
        do {
            _ = try PipelineConfiguration.load(configFile: nil, environment: [name: text])
            Issue.record("expected \(name)=\(text) to be refused")
        } catch {
            #expect(error.source == name)
        }
    }
}
