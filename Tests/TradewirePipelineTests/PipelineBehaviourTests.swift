import Foundation
import Synchronization
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

struct Boom: Error {}

@Suite struct PipelineBehaviourTests {
    @Test(arguments: Mode.allCases)
    func aThrowingOrHangingHandlerBreaksNeitherTheBusNorTheIteration(mode: Mode) async throws {
        let bus = EventBus(logger: quietLogger)
        bus.subscribe(
            try EventPattern("signals_ready"), owner: .inProcess("bad"), handler: .async { _ in throw Boom() })
        bus.subscribe(
            try EventPattern("approved_ready"), owner: .inProcess("stuck"),
            handler: .async { _ in try await Task.sleep(for: .seconds(3600)) })
        let orchestrator = makeOrchestrator(mode, bus: bus, timeout: .seconds(10))
        let start = ContinuousClock.now
        let result = try await orchestrator.run(IterationRequest())
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(result.signals.count == 3)
        // The sequential orchestrator does not wait for observers: give the failure a moment.
        let deadline = ContinuousClock.now + .seconds(5)
        while bus.statistics().handlerErrors == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(bus.statistics().handlerErrors == 1)
        let published = await bus.publish("after", payload: JSONValue(1))
        #expect(published.event.seq > 6)
    }

    @Test(arguments: Mode.allCases)
    func theDeadlineEndsAHungIterationWithTheLastStage(mode: Mode) async throws {
        let orchestrator = makeOrchestrator(mode, provider: HangingProvider(), timeout: .milliseconds(200))
        await #expect(throws: PipelineError.timeout(iteration: 1, iterationID: "t-1", stage: .none)) {
            _ = try await orchestrator.run(IterationRequest())
        }
        let stats = orchestrator.metrics.snapshot()
        #expect(stats["timeouts"] == 1)
    }

    @Test(arguments: Mode.allCases)
    func noDataForAnySymbolIsAnError(mode: Mode) async throws {
        let orchestrator = makeOrchestrator(mode, provider: FailingProvider())
        do {
            _ = try await orchestrator.run(IterationRequest(symbols: ["AAA", "BBB"]))
            Issue.record("expected noMarketData")
        } catch {
            guard case .noMarketData(_, _, let errors) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(errors.map(\.symbol) == ["AAA", "BBB"])
            #expect(errors.allSatisfy { $0.stage == .data })
        }
    }

    @Test(arguments: Mode.allCases)
    func concurrentIterationsStaySeparate(mode: Mode) async throws {
        let orchestrator = makeOrchestrator(mode)
        let groups = (0..<8).map { g in syntheticSymbols(40).filter { Int($0.dropFirst())! % 8 == g } }
        let results = try await withThrowingTaskGroup(of: ([String], IterationResult).self) { group in
            for symbols in groups {
                group.addTask { (symbols, try await orchestrator.run(IterationRequest(symbols: symbols))) }
            }
            var all: [([String], IterationResult)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(Set(results.map(\.1.iterationID)).count == 8)
        for (symbols, result) in results {
            #expect(result.symbols == symbols.sorted())
            #expect(result.signals.map(\.symbol) == symbols.sorted())
            #expect(result.signals.allSatisfy { $0.id.hasPrefix(result.iterationID + "-") })
            #expect(result.auditReport.metrics["iteration_number"] == JSONValue(result.iteration))
        }
    }

    @Test(arguments: Mode.allCases)
    func dryRunChangesNoState(mode: Mode) async throws {
        let symbols = syntheticSymbols(30)
        let orchestrator = makeOrchestrator(mode, symbols: symbols)
        let dry = try await orchestrator.run(IterationRequest(dryRun: true))
        #expect(dry.dryRun)
        #expect(!dry.executionResults.isEmpty)
        #expect(dry.executionResults.allSatisfy { !$0.executed && $0.orderID == nil && $0.fillPrice != nil })
        // A real run afterwards decides exactly what a fresh daemon would: nothing was committed.
        let real = try await orchestrator.run(IterationRequest())
        let fresh = try await makeOrchestrator(mode, symbols: symbols).run(IterationRequest())
        func decisions(_ r: IterationResult) -> [String] {
            r.approvedSignals.map { "\($0.symbol) \($0.action) \($0.qty ?? -1) \($0.confidence)" }
        }
        #expect(decisions(real) == decisions(fresh))
        #expect(real.executionResults.map(\.fillPrice) == fresh.executionResults.map(\.fillPrice))
        #expect(real.executionResults.contains { $0.executed })
    }

    @Test(arguments: Mode.allCases)
    func strategyOverrideAndSuppliedMarketData(mode: Mode) async throws {
        let source = SimulatedMarketDataProvider(seed: 5)
        let data = try await source.marketData(for: "ZZZ", bars: 252, asOf: fixedNow)
        let orchestrator = makeOrchestrator(mode)
        let result = try await orchestrator.run(
            IterationRequest(marketData: ["ZZZ": data], strategy: .meanReversion))
        #expect(result.symbols == ["ZZZ"])
        #expect(result.signals.map(\.strategyName) == ["MeanReversion"])
        #expect(result.marketData["ZZZ"] == data)
    }

    @Test(arguments: Mode.allCases)
    func aClientPublishedSignalsEventRunsTheRestOfTheChain(mode: Mode) async throws {
        let bus = EventBus(logger: quietLogger)
        let orchestrator = makeOrchestrator(mode, bus: bus)
        let signal = try TradingSignal(
            json: ["symbol": "AAPL", "action": "HOLD", "strategy_name": "Manual", "confidence": 0.9], path: "")
        let publication = orchestrator.publishClientEvent(
            .signalsReady, payload: .signals([signal]), metadata: ["who": "test"])
        #expect(publication.published.event.seq == 1)
        let outcome = await publication.reaction()
        let iteration = try #require(outcome.iteration)
        #expect(iteration.completed)
        #expect(iteration.result?.marketData["AAPL"] != nil, "signals from outside get market data for risk")
        let types = bus.history().records.map(\.event.type)
        #expect(types == ["signals_ready", "validated_ready", "approved_ready", "executed_ready", "audit_ready"])
        let first = bus.history().records[0].event
        #expect(first.metadata["who"] == "test")
        #expect(first.metadata["iteration_id"] == JSONValue(iteration.id))
    }

    @Test(arguments: Mode.allCases)
    func clientRiskAndLaterEventsDriveNoStage(mode: Mode) async throws {
        let bus = EventBus(logger: quietLogger)
        let orchestrator = makeOrchestrator(mode, bus: bus)
        let signal = try TradingSignal(
            json: [
                "symbol": "AAPL", "action": "SELL", "strategy_name": "Manual", "confidence": 1, "price": 1_000_000,
                "qty": 1, "approved": true,
            ], path: "")
        for event in [PipelineEvent.approvedReady, .executedReady] {
            let payload: PipelinePayload =
                event == .approvedReady
                ? .signals([signal])
                : .executions([
                    ExecutionResult(signal: signal, executed: true, executionTime: fixedNow, quantity: 1, side: .sell)
                ])
            let outcome = await orchestrator.publishClientEvent(event, payload: payload, metadata: [:]).reaction()
            #expect(outcome.iteration == nil)
        }
        #expect(bus.history().records.map(\.event.type) == ["approved_ready", "executed_ready"])
    }

    @Test func pipelineEventsAreFoundByNameAndNothingElseIs() {
        for event in PipelineEvent.allCases {
            #expect(PipelineEvent.named(event.rawValue) == event)
            // A near miss of every length around the name's, and the name cut or extended.
            #expect(PipelineEvent.named(event.rawValue + "y") == nil)
            #expect(PipelineEvent.named(String(event.rawValue.dropLast())) == nil)
            #expect(PipelineEvent.named(event.rawValue.uppercased()) == nil)
            #expect(PipelineEvent.named("x" + event.rawValue.dropFirst()) == nil)
        }
        for other in ["", "y", "bench", "ready", "_ready", "market_ready", "data_ready.x", "data.ready"] {
            #expect(PipelineEvent.named(other) == nil, "\(other)")
        }
    }

    @Test func aClientEventNamingALiveIterationDoesNotDriveIt() async throws {
        let bus = EventBus(logger: quietLogger)
        let orchestrator = makeOrchestrator(.eventDriven, provider: SlowProvider(), bus: bus)
        let run = Task { try await orchestrator.run(IterationRequest(symbols: ["AAPL"])) }
        try await Task.sleep(for: .milliseconds(100))  // iteration t-1 is live, fetching data
        let signal = try TradingSignal(
            json: ["symbol": "AAPL", "action": "BUY", "strategy_name": "Manual", "confidence": 1, "approved": true],
            path: "")
        let outcome = await orchestrator.publishClientEvent(
            .approvedReady, payload: .signals([signal]), metadata: ["iteration_id": "t-1", "iteration": 1]
        ).reaction()
        #expect(outcome.iteration == nil)
        let result = try await run.value
        #expect(!result.executionResults.contains { $0.signal.strategyName == "Manual" })
        #expect(bus.history().records.filter { $0.event.type == "executed_ready" }.count == 1)
    }
}

/// Simulated data, half a second late.
struct SlowProvider: MarketDataProvider {
    let inner = SimulatedMarketDataProvider(seed: 42)
    var name: String { "slow" }
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        try await Task.sleep(for: .milliseconds(500))
        return try await inner.marketData(for: symbol, bars: bars, asOf: asOf)
    }
}
