import Foundation
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

@Suite struct OrchestratorEquivalenceTests {
    /// The two orchestrators decide exactly the same on the same data: 60 symbols, three seeds,
    /// two consecutive iterations each (so the shared risk budget and broker state matter too).
    @Test(arguments: [7, 42, 2026] as [UInt64])
    func sequentialEqualsEventDriven(seed: UInt64) async throws {
        let symbols = syntheticSymbols(60)
        let sequential = makeOrchestrator(.sequential, seed: seed, symbols: symbols)
        let eventDriven = makeOrchestrator(.eventDriven, seed: seed, symbols: symbols)
        var first: IterationResult?
        for _ in 0..<2 {
            let a = try await sequential.run(IterationRequest())
            let b = try await eventDriven.run(IterationRequest())
            #expect(a.iteration == b.iteration)
            #expect(Decisions(a) == Decisions(b))
            #expect(a.signals.count == 60)
            first = first ?? a
        }
        // The data is varied enough for the comparison to mean something.
        let run = try #require(first)
        let actions = Set(run.signals.map(\.action))
        #expect(actions.count >= 2, "expected a mix of actions, got \(actions)")
        #expect(run.executionResults.contains { $0.executed })
        #expect(!run.rejectedSignals.isEmpty)
    }

    @Test(arguments: Mode.allCases)
    func sameSeedGivesTheSameIteration(mode: Mode) async throws {
        let symbols = syntheticSymbols(20)
        let first = try await makeOrchestrator(mode, seed: 99, symbols: symbols).run(IterationRequest())
        let second = try await makeOrchestrator(mode, seed: 99, symbols: symbols).run(IterationRequest())
        #expect(Decisions(first) == Decisions(second))
        let other = try await makeOrchestrator(mode, seed: 100, symbols: symbols).run(IterationRequest())
        #expect(Decisions(first) != Decisions(other))
    }
}
