import Foundation
import Logging
import Synchronization
import TradewireTrading

/// The work of each stage, shared by both orchestrators so that they can only differ in
/// how stages are chained (direct calls or events), never in what a stage decides.
///
/// Stages never throw: a problem becomes a ``StageError`` and the chain goes on to audit.
struct PipelineStages: Sendable {
    let agents: TradingAgents
    let metrics: PipelineMetrics
    let clock: @Sendable () -> Date
    let logger: Logger

    private func timed<T>(_ stage: PipelineStage, _ context: IterationContext, _ body: () async -> T) async -> T {
        let start = ContinuousClock.now
        let value = await body()
        let d = ContinuousClock.now - start
        metrics.recordStage(stage, seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        context.finished(stage)
        return value
    }

    /// Fetches (or takes the supplied) market data; per-symbol failures become errors.
    func data(_ context: IterationContext, symbols: [String]) async -> [String: MarketData] {
        await timed(.data, context) {
            var marketData: [String: MarketData] = [:]
            var errors: [StageError] = []
            if let supplied = context.request.marketData {
                for symbol in symbols {
                    if let data = supplied[symbol], !data.bars.isEmpty {
                        marketData[symbol] = data
                    } else {
                        errors.append(
                            StageError(stage: .data, symbol: symbol, message: "no market data supplied for symbol"))
                    }
                }
            } else {
                let fetched = await agents.data.fetch(symbols: symbols, asOf: context.asOf)
                marketData = fetched.marketData
                errors = fetched.failures.map { StageError(stage: .data, symbol: $0.symbol, message: $0.message) }
                let reported = Set(errors.compactMap(\.symbol))
                for symbol in symbols where marketData[symbol] == nil && !reported.contains(symbol) {
                    errors.append(StageError(stage: .data, symbol: symbol, message: "no market data returned"))
                }
            }
            errors.sort { ($0.symbol ?? "") < ($1.symbol ?? "") }
            context.record(errors)
            context.update { $0.marketData = marketData }
            if !context.request.dryRun && !marketData.isEmpty {
                var marks: [String: Double] = [:]
                for (symbol, data) in marketData { if let close = data.bars.last?.close { marks[symbol] = close } }
                await agents.broker.mark(marks)
            }
            return marketData
        }
    }

    /// Takes market data that arrived in an event (a client's `data_ready`).
    func adopt(_ context: IterationContext, marketData: [String: MarketData]) {
        context.update {
            $0.marketData = marketData
            $0.symbols = marketData.keys.sorted()
        }
        context.finished(.data)
    }

    func strategy(_ context: IterationContext, marketData: [String: MarketData]) async -> [TradingSignal] {
        await timed(.strategy, context) {
            let output = agents.strategy.generate(
                marketData: marketData, override: context.request.strategy, idPrefix: context.id, now: clock())
            context.record(output.failures.map { StageError(stage: .strategy, symbol: $0.symbol, message: $0.message) })
            context.update { $0.signals = output.signals }
            return output.signals
        }
    }

    func quant(_ context: IterationContext, signals: [TradingSignal]) async -> [TradingSignal] {
        await timed(.quant, context) {
            let marketData = context.progress.withLock { $0.marketData }
            let validated = signals.isEmpty ? [] : agents.quant.validate(signals, marketData: marketData)
            context.update { $0.validated = validated }
            return validated
        }
    }

    func risk(_ context: IterationContext, validated: [TradingSignal]) async -> [TradingSignal] {
        await timed(.risk, context) {
            guard !validated.isEmpty else {
                context.update {
                    $0.approved = []; $0.rejected = []
                }
                return []
            }
            let marketData = context.progress.withLock { $0.marketData }
            let account = await agents.broker.account()
            let decision = agents.risk.evaluate(
                validated, marketData: marketData, account: account, on: context.asOf,
                commit: !context.request.dryRun)
            context.update {
                $0.approved = decision.approved
                $0.rejected = decision.rejected
            }
            return decision.approved
        }
    }

    func execution(_ context: IterationContext, approved: [TradingSignal]) async -> [ExecutionResult] {
        await timed(.execution, context) {
            let results: [ExecutionResult]
            if approved.isEmpty || context.isAbandoned {
                results = []
            } else {
                let prices = ExecutionAgent.referencePrices(from: context.progress.withLock { $0.marketData })
                results = await agents.execution.execute(
                    approved, referencePrices: prices, asOf: context.asOf, dryRun: context.request.dryRun,
                    now: clock())
            }
            for result in results where !result.executed && !context.request.dryRun {
                context.record([
                    StageError(stage: .execution, symbol: result.signal.symbol, message: result.error ?? "not executed")
                ])
            }
            context.update { $0.executions = results }
            return results
        }
    }

    /// Audits the iteration and builds its result.
    func audit(_ context: IterationContext, executions: [ExecutionResult]) async -> IterationResult {
        await timed(.audit, context) {
            let progress = context.progress.withLock { $0 }
            let duration = context.elapsedSeconds
            let summary = IterationSummary(
                iterationNumber: context.number, timestamp: clock(),
                symbolsProcessed: progress.marketData.keys.sorted(),
                signalsGenerated: progress.signals.count, signalsValidated: progress.validated.count,
                signalsApproved: progress.approved.count, signalsExecuted: executions.filter(\.executed).count,
                executionResults: executions, errors: progress.errors.map(\.message), durationSeconds: duration)
            let report = agents.audit.audit(summary, record: !context.request.dryRun, now: clock())
            return IterationResult(
                iteration: context.number, iterationID: context.id, symbols: progress.symbols,
                durationSeconds: duration,
                marketData: progress.marketData, signals: progress.signals, validatedSignals: progress.validated,
                approvedSignals: progress.approved, rejectedSignals: progress.rejected, executionResults: executions,
                auditReport: report, errors: progress.errors, dryRun: context.request.dryRun, finishedAt: clock())
        }
    }
}
