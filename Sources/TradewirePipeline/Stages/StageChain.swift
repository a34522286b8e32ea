import Foundation
import Logging
import Synchronization
import TradewireJSON
import TradewireTrading

/// Runs one stage: its `replace` handler or built-in agent, then its `after` handlers in
/// order, applying each handler's failure policy and checking every result (PROTOCOL §9).
struct StageChain: Sendable {
    let stage: PipelineStage
    let context: IterationContext
    let handlers: StageHandlers
    /// The account risk and execution handlers see, read when the first handler is called
    /// (after the built-in agent ran); nil for other stages.
    let account: (@Sendable () async -> StageAccount)?
    /// Publishes `stage_failed` for a failed call.
    let reportFailure: @Sendable (any StageHandler, StageFailure) async -> Void
    /// The budget risk committed to (approvals a risk handler takes back release their risk).
    let riskBudget: RiskBudget?

    /// The stage's final output. `builtIn` runs the built-in agent; it is not run when a
    /// `replace` handler answers.
    func run(input: StageInput, builtIn: () async -> StageReply) async -> StageValue {
        var accountRead: StageAccount?
        func currentAccount() async -> StageAccount? {
            guard let account else { return nil }
            if accountRead == nil { accountRead = await account() }
            return accountRead
        }
        var output: StageValue
        if let replace = handlers.replace {
            if input.isEmpty && stage != .data {
                output = Self.empty(stage)
            } else {
                switch await call(replace, input: input, output: nil, account: await currentAccount()) {
                case .success(let reply):
                    output = accepted(reply, from: replace, input: input, previous: nil)
                case .failure(let failure):
                    await reportFailure(replace, failure)
                    switch replace.onFailure {
                    case .fallback:
                        let reply = await builtIn()
                        context.record(reply.errors)
                        output = reply.value
                    case .failClosed where stage == .execution:
                        output = failedClosed(input: input, handler: replace, failure: failure)
                    case .skip, .failClosed:
                        output = Self.empty(stage)
                        reportSkipped(input: input, handler: replace, failure: failure)
                    }
                }
            }
        } else {
            let reply = await builtIn()
            context.record(reply.errors)
            output = reply.value
        }
        for handler in handlers.after {
            guard !context.isAbandoned, !Task.isCancelled else { break }
            guard !Self.isEmpty(output) || stage == .data else { continue }
            switch await call(handler, input: input, output: output, account: await currentAccount()) {
            case .success(let reply):
                output = accepted(reply, from: handler, input: input, previous: output)
            case .failure(let failure):
                await reportFailure(handler, failure)
                if handler.onFailure == .failClosed && (stage == .risk || stage == .execution) {
                    output = failedClosed(previous: output, handler: handler, failure: failure)
                }
            }
        }
        return output
    }

    // MARK: calls

    private func call(_ handler: any StageHandler, input: StageInput, output: StageValue?, account: StageAccount?) async
        -> Result<StageReply, StageFailure>
    {
        let call = StageCall(
            stage: stage, iteration: context.number, iterationID: context.id, deadline: context.deadline,
            deadlineDate: context.deadlineDate, dryRun: context.request.dryRun, input: input, output: output,
            account: account)
        let start = ContinuousClock.now
        var result = await handler.handle(call)
        if case .success(let reply) = result, let problem = Self.shapeProblem(reply.value, stage: stage, input: input) {
            result = .failure(StageFailure(.malformed, problem))
        }
        let elapsed = ContinuousClock.now - start
        let record = HandlerCallRecord(
            stage: stage, name: handler.name, mode: handler.mode,
            durationMilliseconds: Double(elapsed.components.seconds) * 1000 + Double(
                elapsed.components.attoseconds) / 1e15,
            failure: result.failure)
        context.update { $0.handlers.append(record) }
        StageMetrics.call(stage, handler.name, outcome: result.failure?.reason.rawValue ?? "ok")
        return result
    }

    /// A result that has the stage's type but not its shape: execution must answer one
    /// result per signal, for those signals.
    private static func shapeProblem(_ value: StageValue, stage: PipelineStage, input: StageInput) -> String? {
        switch (stage, value) {
        case (.data, .marketData), (.strategy, .signals), (.quant, .signals), (.risk, .signals): return nil
        case (.execution, .executions(let results)):
            guard case .signals(let signals) = input else { return nil }
            guard results.count == signals.count else {
                return "expected \(signals.count) execution results (one per signal), got \(results.count)"
            }
            for (result, signal) in zip(results, signals) where result.signal.id != signal.id {
                return "execution result for signal \(result.signal.id) does not match signal \(signal.id)"
            }
            return nil
        default:
            return "the result does not have the \(stage.rawValue) stage's type"
        }
    }

    // MARK: accepting results

    /// Completes and, for risk, restricts a handler's result.
    private func accepted(_ reply: StageReply, from handler: any StageHandler, input: StageInput, previous: StageValue?)
        -> StageValue
    {
        context.record(reply.errors)
        switch reply.value {
        case .marketData(let data):
            return .marketData(data.filter { !$0.value.bars.isEmpty })
        case .signals(let signals):
            let completed = signals.map { SignalCompletion.complete($0, marketData: marketData(input)) }
            if stage == .risk, case .signals(let before)? = previous {
                return .signals(tightened(before, by: completed, handler: handler))
            }
            return .signals(completed)
        case .executions(let results):
            return .executions(results)
        }
    }

    private func marketData(_ input: StageInput) -> [String: MarketData] {
        if case .signalsAndMarketData(_, let data) = input { return data }
        if case .marketData(let data) = input { return data }
        return context.progress.withLock { $0.marketData }
    }

    /// Risk only tightens: an approved signal may be rejected, or its `qty`/`risk_amount`
    /// lowered; any other change is ignored for that signal and reported in `errors`.
    private func tightened(_ before: [TradingSignal], by reply: [TradingSignal], handler: any StageHandler)
        -> [TradingSignal]
    {
        var byID: [String: TradingSignal] = [:]
        var errors: [StageError] = []
        let known = Set(before.map(\.id))
        for signal in reply {
            if !known.contains(signal.id) {
                errors.append(
                    ignored(signal.symbol, handler, "added signal \(signal.id), which risk may not do"))
            } else if byID[signal.id] != nil {
                errors.append(ignored(signal.symbol, handler, "returned signal \(signal.id) twice"))
            } else {
                byID[signal.id] = signal
            }
        }
        var result: [TradingSignal] = []
        for original in before {
            guard let revised = byID[original.id] else {
                errors.append(ignored(original.symbol, handler, "dropped signal \(original.id), which risk may not do"))
                result.append(original)
                continue
            }
            if let problem = Self.forbiddenChange(from: original, to: revised) {
                errors.append(ignored(original.symbol, handler, problem))
                result.append(original)
                continue
            }
            var next = original
            if original.approved && !revised.approved {
                next.approved = false
                next.rejectionReason = revised.rejectionReason ?? "rejected by risk handler \(handler.name)"
                release(original.riskAmount)
            } else if original.approved {
                let qty = revised.qty ?? original.qty
                let risk = revised.riskAmount ?? original.riskAmount
                if qty == 0 {
                    next.approved = false
                    next.rejectionReason = revised.rejectionReason ?? "qty lowered to 0 by risk handler \(handler.name)"
                    release(original.riskAmount)
                } else {
                    next.qty = qty
                    next.riskAmount = risk
                    release((original.riskAmount ?? 0) - (risk ?? 0))
                }
            }
            result.append(next)
        }
        context.record(errors)
        return result
    }

    private func ignored(_ symbol: String, _ handler: any StageHandler, _ what: String) -> StageError {
        StageError(stage: .risk, symbol: symbol, message: "risk handler \(handler.name) \(what): ignored")
    }

    /// Why `revised` is not a tightening of `original`, or nil when it is.
    static func forbiddenChange(from original: TradingSignal, to revised: TradingSignal) -> String? {
        if !original.approved && revised.approved { return "approved a rejected signal \(original.id)" }
        if let newQty = revised.qty, newQty > (original.qty ?? 0) {
            return "raised qty of \(original.id) from \(original.qty ?? 0) to \(newQty)"
        }
        if let newRisk = revised.riskAmount, newRisk > (original.riskAmount ?? 0) {
            return "raised risk_amount of \(original.id)"
        }
        var changed: [String] = []
        if revised.symbol != original.symbol { changed.append("symbol") }
        if revised.action != original.action { changed.append("action") }
        if revised.strategyName != original.strategyName { changed.append("strategy_name") }
        if revised.confidence != original.confidence { changed.append("confidence") }
        if let price = revised.price, price != original.price { changed.append("price") }
        if let stop = revised.stopLoss, stop != original.stopLoss { changed.append("stop_loss") }
        if let take = revised.takeProfit, take != original.takeProfit { changed.append("take_profit") }
        guard changed.isEmpty else {
            return "changed \(changed.joined(separator: ", ")) of \(original.id), which risk may not do"
        }
        return nil
    }

    private func release(_ amount: Double?) {
        guard let amount, amount > 0, !context.request.dryRun else { return }
        riskBudget?.release(amount, on: context.asOf)
    }

    // MARK: failures

    /// A failed `replace` handler under `skip`: each input symbol is reported.
    private func reportSkipped(input: StageInput, handler: any StageHandler, failure: StageFailure) {
        let message = "\(stage.rawValue) handler \(handler.name) failed: \(failure.reason.rawValue)"
        context.record(Self.symbols(of: input).map { StageError(stage: stage, symbol: $0, message: message) })
    }

    private static func symbols(of input: StageInput) -> [String] {
        switch input {
        case .symbols(let symbols): symbols
        case .marketData(let data): data.keys.sorted()
        case .signalsAndMarketData(let signals, _), .signals(let signals): signals.map(\.symbol)
        }
    }

    /// Execution fail-closed for a replace handler: every order is not executed.
    private func failedClosed(input: StageInput, handler: any StageHandler, failure: StageFailure) -> StageValue {
        guard case .signals(let signals) = input else { return Self.empty(stage) }
        let message = "execution handler \(handler.name) failed: \(failure.reason.rawValue)"
        return .executions(signals.map { ExecutionResult(signal: $0, executed: false, error: message) })
    }

    /// Fail-closed after an `after` handler: risk rejects every non-HOLD signal; execution
    /// marks every order not executed.
    private func failedClosed(previous: StageValue, handler: any StageHandler, failure: StageFailure) -> StageValue {
        switch previous {
        case .signals(let signals) where stage == .risk:
            let reason = "risk handler \(handler.name) failed: \(failure.reason.rawValue)"
            return .signals(
                signals.map { signal in
                    guard signal.action != .hold else { return signal }
                    var rejected = signal
                    if rejected.approved { release(rejected.riskAmount) }
                    rejected.approved = false
                    rejected.rejectionReason = reason
                    return rejected
                })
        case .executions(let results) where stage == .execution:
            let message = "execution handler \(handler.name) failed: \(failure.reason.rawValue)"
            return .executions(
                results.map { result in
                    var failed = result
                    failed.executed = false
                    failed.error = message
                    return failed
                })
        default:
            return previous
        }
    }

    static func empty(_ stage: PipelineStage) -> StageValue {
        switch stage {
        case .data: .marketData([:])
        case .execution: .executions([])
        default: .signals([])
        }
    }

    static func isEmpty(_ value: StageValue) -> Bool {
        switch value {
        case .marketData(let data): data.isEmpty
        case .signals(let signals): signals.isEmpty
        case .executions(let results): results.isEmpty
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

/// Fills what a handler's signal may leave out (PROTOCOL §9): `price` from the symbol's
/// last close, `stop_loss`/`take_profit` from the built-in strategy formulas.
enum SignalCompletion {
    static func complete(_ signal: TradingSignal, marketData: [String: MarketData]) -> TradingSignal {
        var signal = signal
        let bars = marketData[signal.symbol]?.bars ?? []
        if signal.price == nil { signal.price = bars.last?.close }
        guard let price = signal.price, signal.action != .hold, signal.stopLoss == nil || signal.takeProfit == nil
        else { return signal }
        let volatility = MarketContext(bars: bars)?.volatility ?? 0
        let levels = StrategyAgent.protectiveLevels(action: signal.action, price: price, volatility: volatility)
        if signal.stopLoss == nil { signal.stopLoss = levels.stopLoss }
        if signal.takeProfit == nil { signal.takeProfit = levels.takeProfit }
        return signal
    }
}
