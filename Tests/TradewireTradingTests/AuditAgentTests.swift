import Foundation
import Testing
import TradewireJSON

@testable import TradewireTrading

@Suite struct AuditAgentTests {
    let now = utc("2025-06-13T15:00:00Z")

    func summary(
        _ n: Int, generated: Int, validated: Int, approved: Int, executed: Int, at: Date? = nil,
        results: [ExecutionResult] = [], errors: [String] = [], duration: Double = 5.5
    ) -> IterationSummary {
        IterationSummary(
            iterationNumber: n, timestamp: at ?? now, symbolsProcessed: ["AAPL", "MSFT"], signalsGenerated: generated,
            signalsValidated: validated, signalsApproved: approved, signalsExecuted: executed,
            executionResults: results,
            errors: errors, durationSeconds: duration)
    }

    @Test func metricsAsTheOriginal() throws {
        let agent = AuditAgent(log: AuditLog(), logger: quietLogger)
        let report = agent.audit(
            summary(1, generated: 2, validated: 2, approved: 1, executed: 1), record: true, now: now)
        #expect(report.reportType == .iteration && report.timestamp == now)
        #expect(
            report.metrics.keys == [
                "iteration_number", "signals_generated", "signals_validated", "signals_approved", "signals_executed",
                "approval_rate", "execution_rate", "duration_seconds", "error_count",
            ])
        #expect(report.metrics["approval_rate"]?.doubleValue == 0.5)
        #expect(report.metrics["execution_rate"]?.doubleValue == 1.0)
        #expect(report.metrics["duration_seconds"]?.doubleValue == 5.5)
        #expect(report.metrics["error_count"]?.intValue == 0)
        #expect(report.metrics["iteration_number"]?.intValue == 1)
        #expect(
            report.summary
                == "Iteration 1 processed 2 signals across 2 symbols: 2 validated, 1 approved, 1 executed, 0 errors.")
        #expect(report.recommendations == nil)

        let ok = ExecutionResult(signal: signal("AAPL", .buy), orderID: "paper-000001", executed: true)
        let failed = ExecutionResult(signal: signal("MSFT", .sell), executed: false, error: "no position")
        let withResults = agent.audit(
            summary(2, generated: 2, validated: 2, approved: 1, executed: 1, results: [ok, failed]), record: true,
            now: now)
        #expect(Array(withResults.metrics.keys.suffix(2)) == ["execution_success_rate", "execution_failures"])
        #expect(withResults.metrics["execution_success_rate"]?.doubleValue == 0.5)
        #expect(withResults.metrics["execution_failures"]?.intValue == 1)
        #expect(withResults.summary.hasSuffix("1 order failed."))
    }

    @Test func recommendationsWhenApprovalLowOrErrors() {
        let agent = AuditAgent(log: AuditLog(), logger: quietLogger)
        let low = agent.audit(summary(3, generated: 4, validated: 4, approved: 1, executed: 1), record: false, now: now)
        #expect(low.metrics["approval_rate"]?.doubleValue == 0.25)
        #expect(low.recommendations?.hasPrefix("Approval rate 25.0% is below 50% (1 of 4 signals approved)") == true)
        let errors = agent.audit(
            summary(4, generated: 2, validated: 2, approved: 2, executed: 0, errors: ["data: XYZ: feed down"]),
            record: false, now: now)
        #expect(errors.metrics["error_count"]?.intValue == 1)
        #expect(errors.recommendations == "1 error occurred during the iteration; the first: data: XYZ: feed down")
        let none = agent.audit(
            summary(5, generated: 0, validated: 0, approved: 0, executed: 0), record: false, now: now)
        #expect(none.metrics["approval_rate"]?.doubleValue == 0)
        #expect(none.metrics["execution_rate"]?.doubleValue == 0)
        #expect(none.summary.lowercased().contains("no trading activity"))
        #expect(none.recommendations?.hasPrefix("No signals were generated") == true)
    }

    @Test func dailyReport() {
        let log = AuditLog()
        let agent = AuditAgent(log: log, logger: quietLogger)
        let empty = agent.dailyReport(now: now)
        #expect(empty.reportType == .daily)
        #expect(empty.summary == "No trading activity today.")
        #expect(empty.summary.lowercased().contains("no trading activity"))
        #expect(empty.metrics.isEmpty)
        _ = agent.audit(
            summary(1, generated: 3, validated: 3, approved: 2, executed: 2, errors: ["x"]), record: true, now: now)
        _ = agent.audit(
            summary(0, generated: 9, validated: 9, approved: 9, executed: 9, at: now.addingTimeInterval(-86_400)),
            record: true, now: now)
        let report = agent.dailyReport(now: now)
        #expect(report.metrics == ["iterations": 1, "total_signals": 3, "total_executed": 2, "total_errors": 1])
        #expect(report.metrics.keys == ["iterations", "total_signals", "total_executed", "total_errors"])
        #expect(report.summary == "Today (2025-06-13): 1 iteration, 3 signals generated, 2 executed, 1 error.")
    }

    @Test func weeklyReport() {
        let log = AuditLog()
        let agent = AuditAgent(log: log, logger: quietLogger)
        #expect(agent.weeklyReport(now: now).summary == "No trading activity this week.")
        #expect(agent.weeklyReport(now: now).metrics.isEmpty)
        for (i, days) in [0.0, 2, 6].enumerated() {
            _ = agent.audit(
                summary(
                    i + 1, generated: 4, validated: 4, approved: i == 0 ? 4 : 2, executed: 1,
                    at: now.addingTimeInterval(-days * 86_400)),
                record: true, now: now)
        }
        _ = agent.audit(
            summary(9, generated: 4, validated: 4, approved: 4, executed: 4, at: now.addingTimeInterval(-8 * 86_400)),
            record: true, now: now)
        let report = agent.weeklyReport(now: now)
        #expect(report.reportType == .weekly)
        #expect(report.metrics.keys == ["iterations", "total_signals", "total_executed", "avg_approval_rate"])
        #expect(report.metrics["iterations"]?.intValue == 3)
        #expect(report.metrics["total_signals"]?.intValue == 12)
        #expect(report.metrics["total_executed"]?.intValue == 3)
        #expect(abs((report.metrics["avg_approval_rate"]?.doubleValue ?? 0) - 2.0 / 3) < 1e-12)  // (1 + 0.5 + 0.5)/3
    }

    @Test func dryRunDoesNotRecord() {
        let log = AuditLog()
        let agent = AuditAgent(log: log, logger: quietLogger)
        _ = agent.audit(summary(1, generated: 1, validated: 1, approved: 1, executed: 0), record: false, now: now)
        #expect(log.count == 0)
        #expect(agent.dailyReport(now: now).summary == "No trading activity today.")
        _ = agent.audit(summary(2, generated: 1, validated: 1, approved: 1, executed: 0), record: true, now: now)
        #expect(log.count == 1)
    }

    @Test func logIsBounded() {
        let log = AuditLog(capacity: 3)
        for i in 0..<5 { log.append(summary(i, generated: 0, validated: 0, approved: 0, executed: 0)) }
        #expect(log.summaries.map(\.iterationNumber) == [2, 3, 4])
    }
}
