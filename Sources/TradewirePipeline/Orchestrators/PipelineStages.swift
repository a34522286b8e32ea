import CoreMetrics
import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireTrading

/// The work of each stage, shared by both orchestrators so that they can only differ in
/// how stages are chained (direct calls or events), never in what a stage decides.
///
/// Each stage runs as a ``StageChain``: the built-in agent (or a `replace` handler), then
/// the stage's `after` handlers. Stages never throw: a problem becomes a ``StageError`` and
/// the chain goes on to audit.
struct PipelineStages: Sendable {
    let agents: TradingAgents
    let metrics: PipelineMetrics
    let clock: @Sendable () -> Date
    let logger: Logger
    let handlerSource: any StageHandlerSource
    /// Publishes `stage_failed` for a failed handler call.
    let reportFailure: @Sendable (IterationContext, any StageHandler, StageFailure) async -> Void

    private func timed<T>(_ stage: PipelineStage, _ context: IterationContext, _ body: () async -> T) async -> T {
        let start = ContinuousClock.now
        let value = await body()
        let elapsed = ContinuousClock.now - start
        metrics.recordStage(stage, seconds: elapsed.inSeconds)
        StageMetrics.seconds(stage).record(elapsed)
        context.finished(stage)
        return value
    }

    private func chain(
        _ stage: PipelineStage, _ context: IterationContext, handlers: StageHandlers? = nil
    ) -> StageChain {
        let report = reportFailure
        let stages = self
        let read: @Sendable () async -> StageAccount = { await stages.account(context) }
        let account = stage == .risk || stage == .execution ? read : nil
        return StageChain(
            stage: stage, context: context, handlers: handlers ?? handlerSource.handlers(for: stage), account: account,
            reportFailure: { handler, failure in await report(context, handler, failure) },
            riskBudget: agents.riskBudget)
    }

    /// The account a risk or execution handler sees.
    private func account(_ context: IterationContext) async -> StageAccount {
        let snapshot = await brokerAccount(context)
        let equity = snapshot.equity.dollars
        let balance = equity.isFinite && equity > 0 ? equity : agents.risk.config.riskDefaultAccountBalance
        return StageAccount(
            cash: snapshot.cash.dollars, equity: equity, positions: snapshot.positions,
            budgetDay: RFC3339.day(of: context.asOf), budgetUsed: committedRisk(context),
            budgetLimit: agents.risk.config.riskMaxDailyLoss * balance)
    }

    /// The broker's account, or the recorded one a replay runs against.
    private func brokerAccount(_ context: IterationContext) async -> AccountSnapshot {
        if let replay = context.request.replay { return replay.account }
        return await agents.broker.account()
    }

    /// Risk committed on the iteration's day (a replay: as it was then).
    private func committedRisk(_ context: IterationContext) -> Double {
        context.request.replay?.committedRisk ?? agents.riskBudget.committed(on: context.asOf)
    }

    /// Fetches (or takes the supplied) market data; per-symbol failures become errors.
    /// Market data supplied with the request is used as given: data handlers are not called.
    func data(_ context: IterationContext, symbols: [String]) async -> [String: MarketData] {
        await timed(.data, context) {
            let handlers: StageHandlers? = context.request.marketData == nil ? nil : StageHandlers.none
            let value = await chain(.data, context, handlers: handlers).run(input: .symbols(symbols)) {
                await builtInData(context, symbols: symbols)
            }
            guard case .marketData(var marketData) = value else { return [:] }
            // Only the symbols asked for, each once (a handler may not add symbols).
            let asked = Set(symbols)
            marketData = marketData.filter { asked.contains($0.key) }
            let reported = Set(
                context.progress.withLock { $0.errors.filter { $0.stage == .data }.compactMap(\.symbol) })
            var missing: [StageError] = []
            for symbol in symbols where marketData[symbol] == nil && !reported.contains(symbol) {
                missing.append(StageError(stage: .data, symbol: symbol, message: "no market data returned"))
            }
            context.record(missing)
            context.update { $0.marketData = marketData }
            if !context.request.dryRun && !marketData.isEmpty {
                var marks: [String: Double] = [:]
                for (symbol, data) in marketData { if let close = data.bars.last?.close { marks[symbol] = close } }
                await agents.broker.mark(marks)
            }
            return marketData
        }
    }

    private func builtInData(_ context: IterationContext, symbols: [String]) async -> StageReply {
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
        return StageReply(.marketData(marketData), errors: errors)
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
            let value = await chain(.strategy, context).run(input: .marketData(marketData)) {
                let output = agents.strategy.generate(
                    marketData: marketData, override: context.request.strategy, idPrefix: context.id, now: clock())
                return StageReply(
                    .signals(output.signals),
                    errors: output.failures.map { StageError(stage: .strategy, symbol: $0.symbol, message: $0.message) }
                )
            }
            let signals = value.signals
            context.update { $0.signals = signals }
            return signals
        }
    }

    func quant(_ context: IterationContext, signals: [TradingSignal]) async -> [TradingSignal] {
        await timed(.quant, context) {
            let marketData = context.progress.withLock { $0.marketData }
            let value = await chain(.quant, context).run(input: .signalsAndMarketData(signals, marketData)) {
                StageReply(.signals(signals.isEmpty ? [] : agents.quant.validate(signals, marketData: marketData)))
            }
            let validated = value.signals
            context.update { $0.validated = validated }
            return validated
        }
    }

    /// The trading state an iteration's risk stage obeys: the switch's now, or the recorded
    /// one a replay runs against.
    private func tradingState(_ context: IterationContext) -> TradingStateSnapshot {
        guard let replay = context.request.replay else { return agents.tradingSwitch.current }
        return replay.tradingState ?? .initial(at: replay.asOf)
    }

    /// The built-in risk agent always runs first; risk handlers can only tighten its decision,
    /// and the trading state is applied once more last (it may have changed while a handler
    /// was thinking).
    func risk(_ context: IterationContext, validated: [TradingSignal]) async -> [TradingSignal] {
        await timed(.risk, context) {
            guard !validated.isEmpty else {
                context.update {
                    $0.approved = []
                    $0.rejected = []
                }
                return []
            }
            var handlers = handlerSource.handlers(for: .risk)
            handlers.replace = nil
            let value = await chain(.risk, context, handlers: handlers).run(
                input: .signals(validated)
            ) {
                let marketData = context.progress.withLock { $0.marketData }
                let snapshot = await brokerAccount(context)
                let decision = agents.risk.evaluate(
                    validated, marketData: marketData, account: snapshot, on: context.asOf,
                    commit: !context.request.dryRun, committedBefore: context.request.replay?.committedRisk,
                    tradingState: tradingState(context))
                // Every signal, in the order it came, with its decision.
                var decided: [String: TradingSignal] = [:]
                for signal in decision.approved + decision.rejected { decided[signal.id] = signal }
                return StageReply(.signals(validated.map { decided[$0.id] ?? $0 }))
            }
            let decided = await heldToTradingState(value.signals, context)
            let approved = decided.filter(\.approved)
            context.update {
                $0.approved = approved
                $0.rejected = decided.filter { !$0.approved }
            }
            return approved
        }
    }

    /// The risk stage's final decision held to the trading state in force now (PROTOCOL §12):
    /// approvals it revokes or lowers give their risk back to the budget.
    private func heldToTradingState(_ signals: [TradingSignal], _ context: IterationContext) async
        -> [TradingSignal]
    {
        let state = tradingState(context)
        guard state.state != .active else { return signals }
        let positions = await brokerAccount(context).positions
        let (enforced, released) = RiskAgent.enforce(state, on: signals, positions: positions)
        if released > 0, !context.request.dryRun { agents.riskBudget.release(released, on: context.asOf) }
        return enforced
    }

    func execution(_ context: IterationContext, approved: [TradingSignal]) async -> [ExecutionResult] {
        await timed(.execution, context) {
            let orders = approved.filter { $0.approved && $0.action != .hold }
            var results: [ExecutionResult] = []
            if !orders.isEmpty && !context.isAbandoned {
                // A dry run shows the built-in would-be fills: execution handlers are not called.
                let handlers = context.request.dryRun ? StageHandlers.none : handlerSource.handlers(for: .execution)
                let value = await chain(.execution, context, handlers: handlers).run(
                    input: .signals(orders)
                ) {
                    let prices = ExecutionAgent.referencePrices(from: context.progress.withLock { $0.marketData })
                    return StageReply(
                        .executions(
                            await agents.execution.execute(
                                orders, referencePrices: prices, asOf: context.asOf, dryRun: context.request.dryRun,
                                now: clock())))
                }
                results = value.executions
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
            // One instant for the summary, the report and the result, so that recovery (which
            // reads the report's timestamp) rebuilds the same `finished_at`.
            let now = clock()
            let summary = IterationSummary(
                iterationNumber: context.number, timestamp: now,
                symbolsProcessed: progress.marketData.keys.sorted(),
                signalsGenerated: progress.signals.count, signalsValidated: progress.validated.count,
                signalsApproved: progress.approved.count, signalsExecuted: executions.filter(\.executed).count,
                executionResults: executions, errors: progress.errors.map(\.message), durationSeconds: duration)
            let report = agents.audit.audit(summary, record: !context.request.dryRun, now: now)
            return IterationResult(
                iteration: context.number, iterationID: context.id, symbols: progress.symbols,
                durationSeconds: duration,
                marketData: progress.marketData, signals: progress.signals, validatedSignals: progress.validated,
                approvedSignals: progress.approved, rejectedSignals: progress.rejected, executionResults: executions,
                auditReport: report, errors: progress.errors, handlers: progress.handlers,
                dryRun: context.request.dryRun, finishedAt: now)
        }
    }
}

extension StageValue {
    var signals: [TradingSignal] {
        if case .signals(let signals) = self { return signals }
        return []
    }

    var executions: [ExecutionResult] {
        if case .executions(let results) = self { return results }
        return []
    }
}
