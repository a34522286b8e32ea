import Foundation
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

/// The fold that recovery, replay and checkpoints share: run the real pipeline, fold what it
/// published, and the books, budget, numbering and summaries come out as the agents hold them.
@Suite struct JournalFoldTests {
    /// A pipeline on a bus whose history holds everything, with the agents it shares.
    private struct Rig {
        let bus = EventBus(historyCapacity: 100_000, logger: quietLogger, clock: { fixedNow })
        let agents: TradingAgents
        let orchestrator: any Orchestrator

        init(seed: UInt64 = 7) {
            var config = TradingConfig()
            config.riskMinConfidence = 0
            agents = TradingAgents(
                config: config, provider: SimulatedMarketDataProvider(seed: seed), logger: quietLogger)
            orchestrator = EventDrivenOrchestrator(
                bus: bus, agents: agents, stageHandlers: NoStageHandlers(),
                defaultSymbols: syntheticSymbols(12), defaultTimeout: .seconds(60), iterationIDPrefix: "f",
                clock: { fixedNow }, logger: quietLogger)
        }

        /// Everything published, as the journal would hold it.
        var records: [JournalRecord] { bus.journalRecords }

        func fold(_ records: [JournalRecord]) -> JournalFold {
            var fold = JournalFold(startingCash: Money(dollars: agents.risk.config.startingCash))
            for record in records { fold.apply(record) }
            return fold
        }
    }

    @Test func theFoldRebuildsWhatTheAgentsHold() async throws {
        let rig = Rig()
        var executed = 0
        for index in 0..<8 {
            let result = try await rig.orchestrator.run(IterationRequest(dryRun: index == 3))
            executed += index == 3 ? 0 : result.executionResults.filter(\.executed).count
        }
        #expect(executed > 0, "the run traded (else this test proves little)")
        let fold = rig.fold(rig.records)
        var books = await rig.agents.broker.books()
        var folded = fold.ledger
        // Marks are not fills: the broker marks every symbol each iteration, the fold only the
        // traded ones (recovery marks the rest from the newest data_ready).
        #expect(Set(folded.marks.keys) == Set(books.positions.keys))
        books.marks = [:]
        folded.marks = [:]
        #expect(folded == books, "cash, positions, cost basis, realised P&L, commissions, order count")
        #expect(folded.orders == executed)
        let live = rig.agents.riskBudget.current
        #expect(fold.budget.day == live.day)
        #expect(abs(fold.budget.committed - live.committed) < 1e-6)
        #expect(fold.lastIteration == 8)
        #expect(fold.summaries.count == 7, "a dry run leaves no audit summary")
        #expect(fold.summaries.map(\.iterationNumber) == rig.agents.auditLog.summaries.map(\.iterationNumber))
        #expect(fold.summaries.map(\.signalsExecuted) == rig.agents.auditLog.summaries.map(\.signalsExecuted))
        #expect(fold.openIterations.isEmpty && fold.unreadable == 0)
    }

    @Test func anIterationWithoutItsAuditStaysOpenAtItsLastStage() async throws {
        let rig = Rig()
        _ = try await rig.orchestrator.run(IterationRequest())
        _ = try await rig.orchestrator.run(IterationRequest())
        let records = rig.records
        let withoutLastAudit = records.filter { !($0.type == "audit_ready" && $0.seq == records.last?.seq) }
        let fold = rig.fold(withoutLastAudit)
        #expect(fold.openIterations.map(\.number) == [2])
        #expect(fold.openIterations.first?.lastStage == .execution)
        var aborted = fold
        let abort = JournalRecord(
            seq: fold.asOfSeq + 1, type: JournalFold.abortedType, timestamp: fixedNow,
            data: JSONWriter.encode(["iteration_id": "f-2", "iteration": 2] as JSONValue), metadata: Array("{}".utf8),
            dataType: "object", subscriberCount: 0)
        aborted.apply(abort)
        #expect(aborted.openIterations.isEmpty, "iteration_aborted closes it")
        #expect(aborted.summaries.count == 1, "an aborted iteration leaves no audit summary")
    }

    @Test func aCheckpointThenTheRestEqualsTheWholeFold() async throws {
        let rig = Rig()
        for _ in 0..<6 { _ = try await rig.orchestrator.run(IterationRequest()) }
        let records = rig.records
        let whole = rig.fold(records)
        for cut in [1, records.count / 3, records.count / 2 + 1, records.count - 1] {
            let head = rig.fold(Array(records.prefix(cut)))
            let text = JSONWriter.string(head.checkpointJSON)
            var resumed = try JournalFold(checkpoint: try JSONParser.parse(text))
            for record in records.dropFirst(cut) { resumed.apply(record) }
            #expect(resumed.ledger == whole.ledger, "cut at \(cut)")
            #expect(resumed.budget == whole.budget && resumed.lastIteration == whole.lastIteration)
            #expect(resumed.summaries.map(\.iterationNumber) == whole.summaries.map(\.iterationNumber))
            #expect(resumed.asOfSeq == whole.asOfSeq && resumed.openIterations.isEmpty)
        }
    }

    @Test func unreadableRecordsAreSkippedAndCounted() {
        var fold = JournalFold(startingCash: Money(dollars: 1_000))
        let bad = JournalRecord(
            seq: 1, type: "executed_ready", timestamp: fixedNow, data: Array("[{\"nope\":1}]".utf8),
            metadata: Array(#"{"iteration":1,"iteration_id":"x-1"}"#.utf8), dataType: "array", subscriberCount: 0)
        fold.apply(bad)
        let noMetadata = JournalRecord(
            seq: 2, type: "approved_ready", timestamp: fixedNow, data: Array("[]".utf8), metadata: Array("{}".utf8),
            dataType: "array", subscriberCount: 0)
        fold.apply(noMetadata)
        #expect(fold.unreadable == 2 && fold.ledger.orders == 0 && fold.asOfSeq == 2)
    }
}
