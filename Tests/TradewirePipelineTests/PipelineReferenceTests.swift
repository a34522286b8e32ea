import Foundation
import Testing
import TradewireBus
import TradewireJSON
import TradewireTrading

@testable import TradewirePipeline

/// tests/test_pipeline.py's end-to-end checks, on both orchestrators.
@Suite struct PipelineReferenceTests {
    @Test(arguments: Mode.allCases)
    func fullIterationOnThreeSymbolsHasConsistentMetrics(mode: Mode) async throws {
        let orchestrator = makeOrchestrator(mode, symbols: ["SPY", "QQQ", "AAPL"])
        let result = try await orchestrator.run(IterationRequest())
        let report = result.auditReport
        #expect(report.reportType == .iteration)
        #expect(!report.summary.isEmpty)
        let m = report.metrics
        for key in [
            "iteration_number", "signals_generated", "signals_validated", "signals_approved", "signals_executed",
            "approval_rate", "execution_rate", "duration_seconds", "error_count",
        ] {
            #expect(m[key] != nil, "missing metric \(key)")
        }
        let generated = try #require(m["signals_generated"]?.intValue)
        let validated = try #require(m["signals_validated"]?.intValue)
        let approved = try #require(m["signals_approved"]?.intValue)
        let executed = try #require(m["signals_executed"]?.intValue)
        #expect(generated == 3)
        #expect(validated <= generated)
        #expect(approved <= validated)
        #expect(executed <= approved)
        for rate in ["approval_rate", "execution_rate"] {
            let value = try #require(m[rate]?.doubleValue)
            #expect((0...1).contains(value))
        }
        #expect(result.symbols == ["AAPL", "QQQ", "SPY"])
        #expect(result.approvedSignals.count + result.rejectedSignals.count == result.validatedSignals.count)
        #expect(result.signals.map(\.symbol) == ["AAPL", "QQQ", "SPY"])
        #expect(result.executionResults.allSatisfy { $0.signal.approved && $0.signal.action != .hold })
        #expect(result.rejectedSignals.allSatisfy { !$0.approved && $0.rejectionReason != nil })
    }

    @Test(arguments: Mode.allCases)
    func theSixEventsArePublishedInOrderWithIterationMetadata(mode: Mode) async throws {
        let bus = EventBus(logger: quietLogger)
        let orchestrator = makeOrchestrator(mode, bus: bus)
        let result = try await orchestrator.run(IterationRequest())
        let records = bus.history().records
        #expect(records.map(\.event.type) == PipelineEvent.allCases.map(\.rawValue))
        for record in records {
            #expect(record.event.metadata["iteration"] == JSONValue(result.iteration))
            #expect(record.event.metadata["iteration_id"] == JSONValue(result.iterationID))
        }
        let signals = try #require(records[1].event.pipelinePayload)
        #expect(signals == .signals(result.signals))
        #expect(records.last?.event.pipelinePayload == .audit(result.auditReport))
    }
}
