import Foundation
import Logging
import TradewireJSON

/// Audits iterations: exact metrics (original §7.6), a deterministic narrative in place of the
/// original's LLM text, and recommendations when something looks wrong.
///
/// Iteration metrics, in this key order: `iteration_number`, `signals_generated`,
/// `signals_validated`, `signals_approved`, `signals_executed`, `approval_rate`
/// (approved/generated, 0 when none generated), `execution_rate` (executed/approved, 0 when
/// none approved), `duration_seconds`, `error_count`; and when there are execution results,
/// `execution_success_rate` (results with `executed: true` / results) and
/// `execution_failures` (results not executed that carry an error).
///
/// Recommendations are written only when `approval_rate < 0.5` or `error_count > 0`.
public struct AuditAgent: Sendable {
    public let log: AuditLog
    let logger: Logger

    public init(log: AuditLog, logger: Logger) {
        self.log = log
        self.logger = logger
    }

    /// The iteration report. With `record` false (a dry run) the summary is not added to the
    /// log used by the daily and weekly reports.
    public func audit(_ summary: IterationSummary, record: Bool, now: Date) -> AuditReport {
        if record { log.append(summary) }
        let generated = summary.signalsGenerated
        let approved = summary.signalsApproved
        let approvalRate = generated > 0 ? Double(approved) / Double(generated) : 0
        let executionRate = approved > 0 ? Double(summary.signalsExecuted) / Double(approved) : 0
        var metrics = JSONObject()
        metrics.append("iteration_number", JSONValue(summary.iterationNumber))
        metrics.append("signals_generated", JSONValue(generated))
        metrics.append("signals_validated", JSONValue(summary.signalsValidated))
        metrics.append("signals_approved", JSONValue(approved))
        metrics.append("signals_executed", JSONValue(summary.signalsExecuted))
        metrics.append("approval_rate", JSONValue(approvalRate))
        metrics.append("execution_rate", JSONValue(executionRate))
        metrics.append("duration_seconds", JSONValue(summary.durationSeconds))
        metrics.append("error_count", JSONValue(summary.errors.count))
        var failures = 0
        let results = summary.executionResults
        if !results.isEmpty {
            let succeeded = results.count { $0.executed }
            failures = results.count { !$0.executed && $0.error != nil }
            metrics.append("execution_success_rate", JSONValue(Double(succeeded) / Double(results.count)))
            metrics.append("execution_failures", JSONValue(failures))
        }

        let report = AuditReport(
            reportType: .iteration, timestamp: now, summary: narrative(summary, failures: failures), metrics: metrics,
            recommendations: recommendations(summary, approvalRate: approvalRate))
        logger.debug(
            "audit.iteration",
            metadata: [
                "iteration": "\(summary.iterationNumber)", "signals": "\(generated)", "approved": "\(approved)",
                "executed": "\(summary.signalsExecuted)", "errors": "\(summary.errors.count)",
            ])
        return report
    }

    /// Today's iterations (UTC day of `now`): "No trading activity today." with empty metrics
    /// when there are none, else metrics `{iterations, total_signals, total_executed, total_errors}`.
    public func dailyReport(now: Date) -> AuditReport {
        let day = RiskBudget.utcDay(now)
        let today = log.summaries { RiskBudget.utcDay($0.timestamp) == day }
        guard !today.isEmpty else {
            return AuditReport(reportType: .daily, timestamp: now, summary: "No trading activity today.")
        }
        let signals = today.reduce(0) { $0 + $1.signalsGenerated }
        let executed = today.reduce(0) { $0 + $1.signalsExecuted }
        let errors = today.reduce(0) { $0 + $1.errors.count }
        var metrics = JSONObject()
        metrics.append("iterations", JSONValue(today.count))
        metrics.append("total_signals", JSONValue(signals))
        metrics.append("total_executed", JSONValue(executed))
        metrics.append("total_errors", JSONValue(errors))
        let summary =
            "Today (\(RFC3339.day(of: now))): \(Self.count(today.count, "iteration")), \(Self.count(signals, "signal")) generated, \(executed) executed, \(Self.count(errors, "error"))."
        return AuditReport(reportType: .daily, timestamp: now, summary: summary, metrics: metrics)
    }

    /// The last 7 days' iterations: "No trading activity this week." with empty metrics when
    /// there are none, else metrics `{iterations, total_signals, total_executed,
    /// avg_approval_rate}` (the mean of the iterations' approval rates).
    public func weeklyReport(now: Date) -> AuditReport {
        let since = now.addingTimeInterval(-7 * 86_400)
        let week = log.summaries { $0.timestamp > since }
        guard !week.isEmpty else {
            return AuditReport(reportType: .weekly, timestamp: now, summary: "No trading activity this week.")
        }
        let signals = week.reduce(0) { $0 + $1.signalsGenerated }
        let executed = week.reduce(0) { $0 + $1.signalsExecuted }
        let rates = week.reduce(0.0) { total, s in
            total + (s.signalsGenerated > 0 ? Double(s.signalsApproved) / Double(s.signalsGenerated) : 0)
        }
        let averageApproval = rates / Double(week.count)
        var metrics = JSONObject()
        metrics.append("iterations", JSONValue(week.count))
        metrics.append("total_signals", JSONValue(signals))
        metrics.append("total_executed", JSONValue(executed))
        metrics.append("avg_approval_rate", JSONValue(averageApproval))
        let summary =
            "Past 7 days: \(Self.count(week.count, "iteration")), \(Self.count(signals, "signal")) generated, \(executed) executed, average approval rate \(Format.fixed(averageApproval * 100, 1))%."
        return AuditReport(reportType: .weekly, timestamp: now, summary: summary, metrics: metrics)
    }

    // MARK: text

    private func narrative(_ s: IterationSummary, failures: Int) -> String {
        let head =
            "Iteration \(s.iterationNumber) processed \(Self.count(s.signalsGenerated, "signal")) across \(Self.count(s.symbolsProcessed.count, "symbol"))"
        guard s.signalsGenerated > 0 else {
            return head + ": no trading activity, \(Self.count(s.errors.count, "error"))."
        }
        var text =
            head
            + ": \(s.signalsValidated) validated, \(s.signalsApproved) approved, \(s.signalsExecuted) executed, \(Self.count(s.errors.count, "error"))."
        if failures > 0 { text += " \(Self.count(failures, "order")) failed." }
        return text
    }

    private func recommendations(_ s: IterationSummary, approvalRate: Double) -> String? {
        var parts: [String] = []
        if s.signalsGenerated == 0 {
            parts.append(
                "No signals were generated: check that every symbol has market data with at least 30 daily bars and review the strategy selector."
            )
        } else if approvalRate < 0.5 {
            parts.append(
                "Approval rate \(Format.fixed(approvalRate * 100, 1))% is below 50% (\(s.signalsApproved) of \(s.signalsGenerated) signals approved): review the rejection reasons, the risk limits (RISK_MIN_CONFIDENCE, RISK_MAX_DAILY_LOSS) and the quant thresholds (QUANT_MIN_SHARPE, QUANT_MAX_DRAWDOWN)."
            )
        }
        if !s.errors.isEmpty {
            parts.append(
                "\(Self.count(s.errors.count, "error")) occurred during the iteration; the first: \(s.errors[0])")
        }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// `1 signal`, `2 signals`.
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
