import Foundation
import Synchronization
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

/// A handler whose answer a test decides; it counts its calls and keeps what it was given.
final class ScriptedHandler: StageHandler {
    let stage: PipelineStage
    let name: String
    let mode: StageMode
    let onFailure: StageFailurePolicy
    private let answer: @Sendable (StageCall) async -> Result<StageReply, StageFailure>
    private let seen = Mutex<[StageCall]>([])

    init(
        _ stage: PipelineStage, _ name: String, mode: StageMode = .after, onFailure: StageFailurePolicy? = nil,
        answer: @escaping @Sendable (StageCall) async -> Result<StageReply, StageFailure>
    ) {
        self.stage = stage
        self.name = name
        self.mode = mode
        self.onFailure = onFailure ?? .defaultPolicy(for: stage)
        self.answer = answer
    }

    var calls: [StageCall] { seen.withLock { $0 } }

    func handle(_ call: StageCall) async -> Result<StageReply, StageFailure> {
        seen.withLock { $0.append(call) }
        return await answer(call)
    }
}

/// A fixed set of handlers per stage.
struct FixedHandlers: StageHandlerSource {
    var byStage: [PipelineStage: StageHandlers]
    func handlers(for stage: PipelineStage) -> StageHandlers { byStage[stage] ?? .none }
}

private let manySymbols = syntheticSymbols(24)

private func run(
    _ mode: Mode, _ handlers: [PipelineStage: StageHandlers], dryRun: Bool = false,
    bus: EventBus = EventBus(
        logger: quietLogger), budget: ((RiskBudget) -> Void)? = nil
) async throws -> IterationResult {
    let orchestrator = makeOrchestrator(
        mode, symbols: manySymbols, bus: bus, stageHandlers: FixedHandlers(byStage: handlers))
    let result = try await orchestrator.run(IterationRequest(strategy: .trendFollowing, dryRun: dryRun))
    let core = (orchestrator as? SequentialOrchestrator)?.core ?? (orchestrator as? EventDrivenOrchestrator)?.core
    budget?(core!.stages.agents.riskBudget)
    return result
}

private func outputSignals(_ call: StageCall) -> [TradingSignal] {
    if case .signals(let signals)? = call.output { return signals }
    return []
}

@Suite struct StageHandlerTests {
    @Test(arguments: Mode.allCases)
    func aRiskGroupRejectsAndTheBudgetComesBack(mode: Mode) async throws {
        let baseline = try await run(mode, [:])
        let approvedOrders = baseline.approvedSignals.filter { $0.action != .hold }
        try #require(!approvedOrders.isEmpty, "the fixture must approve orders without handlers")
        let veto = ScriptedHandler(.risk, "veto") { call in
            .success(
                StageReply(
                    .signals(
                        outputSignals(call).map { s in
                            var s = s
                            if s.action != .hold {
                                s.approved = false
                                s.rejectionReason = "vetoed"
                            }
                            return s
                        })))
        }
        let left = Mutex(-1.0)
        let result = try await run(mode, [.risk: StageHandlers(after: [veto])]) { budget in
            left.withLock { $0 = budget.committed(on: fixedNow) }
        }
        #expect(left.withLock { $0 } == 0, "every approval the group took back released its risk")
        #expect(result.approvedSignals.allSatisfy { $0.action == .hold })
        #expect(result.executedCount == 0)
        #expect(result.rejectedSignals.filter { $0.rejectionReason == "vetoed" }.count == approvedOrders.count)
        #expect(result.handlers.map(\.name) == ["veto"])
        #expect(result.handlers.first?.failure == nil)
        let call = try #require(veto.calls.first)
        #expect(call.account != nil)
        #expect(call.account?.budgetUsed ?? 0 > 0, "the built-in committed the approvals before the group ran")
    }

    @Test func aRiskGroupCanOnlyTighten() async throws {
        let baseline = try await run(.sequential, [:])
        let orders = baseline.approvedSignals.filter { $0.action != .hold }
        try #require(orders.count >= 2)
        let rejectedBefore = try #require(baseline.rejectedSignals.first)
        let loosen = ScriptedHandler(.risk, "loosen") { call in
            var signals = outputSignals(call)
            for i in signals.indices {
                if signals[i].id == orders[0].id { signals[i].qty = (signals[i].qty ?? 0) + 100 }  // raise: ignored
                if signals[i].id == orders[1].id { signals[i].qty = 1 }  // lower: kept
                if signals[i].id == rejectedBefore.id { signals[i].approved = true }  // approve: ignored
            }
            var added = signals[0]
            added.id = "made-up"
            signals.append(added)  // add: ignored
            return .success(StageReply(.signals(signals)))
        }
        let result = try await run(.sequential, [.risk: StageHandlers(after: [loosen])])
        let byID = Dictionary(
            uniqueKeysWithValues: (result.approvedSignals + result.rejectedSignals).map { ($0.id, $0) })
        #expect(byID[orders[0].id]?.qty == orders[0].qty)
        #expect(byID[orders[1].id]?.qty == 1)
        #expect(byID[rejectedBefore.id]?.approved == false)
        #expect(byID["made-up"] == nil)
        let riskErrors = result.errors.filter { $0.stage == .risk }.map(\.message)
        #expect(riskErrors.count == 3, "\(riskErrors)")
        #expect(riskErrors.contains { $0.contains("raised qty") })
        #expect(riskErrors.contains { $0.contains("approved a rejected signal") })
        #expect(riskErrors.contains { $0.contains("added signal made-up") })
    }

    @Test(arguments: Mode.allCases)
    func aFailingRiskGroupFailsClosedAndPublishesStageFailed(mode: Mode) async throws {
        let bus = EventBus(logger: quietLogger)
        let failing = ScriptedHandler(.risk, "broken") { _ in .failure(StageFailure(.timeout, "no answer in 5 ms")) }
        let result = try await run(mode, [.risk: StageHandlers(after: [failing])], bus: bus)
        #expect(result.approvedSignals.allSatisfy { $0.action == .hold })
        #expect(result.executedCount == 0)
        let closed = result.rejectedSignals.filter { $0.rejectionReason == "risk handler broken failed: timeout" }
        #expect(!closed.isEmpty)
        #expect(result.handlers.first?.failure?.reason == .timeout)
        let failures = bus.history(matching: try EventPattern("stage_failed")).records
        #expect(failures.count == 1)
        let data = try #require(failures.first?.event.data(as: JSONValue.self))
        #expect(data["reason"] == "timeout")
        #expect(data["policy"] == "fail_closed")
        #expect(data["iteration_id"] == JSONValue(result.iterationID))
        #expect(failures.first?.event.metadata["iteration_id"] == JSONValue(result.iterationID))
    }

    @Test func aStrategyReplaceProducesTheSignalsAndMissingFieldsAreFilled() async throws {
        let replace = ScriptedHandler(.strategy, "mine", mode: .replace) { call in
            guard case .marketData(let data) = call.input else { return .failure(StageFailure(.malformed, "input")) }
            let symbol = data.keys.sorted()[0]
            return .success(
                StageReply(
                    .signals([
                        TradingSignal(symbol: symbol, action: .buy, strategyName: "TrendFollowing", confidence: 0.9)
                    ])))
        }
        let result = try await run(.eventDriven, [.strategy: StageHandlers(replace: replace)])
        #expect(result.signals.count == 1)
        let signal = try #require(result.signals.first)
        let close = try #require(result.marketData[signal.symbol]?.bars.last?.close)
        #expect(signal.price == close)
        #expect(signal.stopLoss == close * 0.98)
        #expect(signal.takeProfit != nil)
    }

    @Test func replacePoliciesSkipAndFallback() async throws {
        let down: @Sendable (StageCall) async -> Result<StageReply, StageFailure> = { _ in
            .failure(StageFailure(.disconnected, "member went away"))
        }
        let skip = ScriptedHandler(.strategy, "s", mode: .replace, onFailure: .skip, answer: down)
        let skipped = try await run(.sequential, [.strategy: StageHandlers(replace: skip)])
        #expect(skipped.signals.isEmpty)
        #expect(
            skipped.errors.filter { $0.stage == .strategy && $0.message == "strategy handler s failed: disconnected" }
                .count == manySymbols.count)
        let fallback = ScriptedHandler(.strategy, "f", mode: .replace, onFailure: .fallback, answer: down)
        let fellBack = try await run(.sequential, [.strategy: StageHandlers(replace: fallback)])
        let baseline = try await run(.sequential, [:])
        #expect(fellBack.signals.map(\.id) == baseline.signals.map(\.id))
    }

    @Test func executionReplaceFailsClosedAndDryRunsSkipExecutionHandlers() async throws {
        let broker = ScriptedHandler(.execution, "broker", mode: .replace) { _ in
            .failure(StageFailure(.error, "broker down"))
        }
        let result = try await run(.sequential, [.execution: StageHandlers(replace: broker)])
        #expect(!result.executionResults.isEmpty)
        #expect(
            result.executionResults.allSatisfy {
                !$0.executed && $0.error == "execution handler broker failed: error"
            })
        _ = try await run(.sequential, [.execution: StageHandlers(replace: broker)], dryRun: true)
        #expect(broker.calls.count == 1, "a dry run shows the built-in would-be fills")
    }

    @Test func anExecutionResultOfTheWrongShapeIsMalformed() async throws {
        let short = ScriptedHandler(.execution, "short") { _ in .success(StageReply(.executions([]))) }
        let result = try await run(.sequential, [.execution: StageHandlers(after: [short])])
        #expect(result.handlers.first?.failure?.reason == .malformed)
        #expect(result.executionResults.allSatisfy { !$0.executed }, "execution fails closed by default")
    }

    @Test func aGroupIsNotCalledWithEmptyInputExceptData() async throws {
        let noSignals = ScriptedHandler(.strategy, "none", mode: .replace) { _ in .success(StageReply(.signals([]))) }
        let quant = ScriptedHandler(.quant, "q") { call in .success(StageReply(call.output!)) }
        let data = ScriptedHandler(.data, "d") { call in .success(StageReply(call.output!)) }
        let result = try await run(
            .sequential,
            [
                .strategy: StageHandlers(replace: noSignals), .quant: StageHandlers(after: [quant]),
                .data: StageHandlers(after: [data]),
            ])
        #expect(result.signals.isEmpty)
        #expect(quant.calls.isEmpty)
        #expect(data.calls.count == 1)
        #expect(result.handlers.map(\.name) == ["d", "none"])
    }

    @Test func bothOrchestratorsCallTheSameHandlersInTheSameOrderWithTheSameResults() async throws {
        func handlers() -> [PipelineStage: StageHandlers] {
            let keepHalf = ScriptedHandler(.quant, "half") { call in
                let signals = outputSignals(call)
                return .success(StageReply(.signals(Array(signals.prefix(signals.count / 2 + 1)))))
            }
            let lower = ScriptedHandler(.risk, "lower") { call in
                .success(
                    StageReply(
                        .signals(
                            outputSignals(call).map { s in
                                var s = s
                                if s.approved, let q = s.qty, q > 1 { s.qty = q / 2 }
                                return s
                            })))
            }
            return [.quant: StageHandlers(after: [keepHalf]), .risk: StageHandlers(after: [lower])]
        }
        let sync = try await run(.sequential, handlers())
        let async = try await run(.eventDriven, handlers())
        #expect(Decisions(sync) == Decisions(async))
        #expect(sync.handlers.map(\.name) == async.handlers.map(\.name))
        #expect(sync.handlers.map(\.name) == ["half", "lower"])
    }

    @Test func anAbandonedIterationCancelsItsHandlerCall() async throws {
        let cancelled = Mutex(false)
        let hang = ScriptedHandler(.strategy, "hang") { _ in
            do { try await Task.sleep(for: .seconds(60)) } catch { cancelled.withLock { $0 = true } }
            return .failure(StageFailure(.timeout, "cancelled"))
        }
        let orchestrator = makeOrchestrator(
            .sequential, symbols: ["AAPL"], timeout: .milliseconds(300),
            stageHandlers: FixedHandlers(byStage: [.strategy: StageHandlers(after: [hang])]))
        await #expect(throws: PipelineError.self) { try await orchestrator.run(IterationRequest()) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(cancelled.withLock { $0 })
        #expect(hang.calls.first.map { $0.deadline <= ContinuousClock.now } == true)
    }
}
