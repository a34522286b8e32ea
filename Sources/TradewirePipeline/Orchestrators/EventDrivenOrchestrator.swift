import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireTrading

/// Chains the stages through the bus: each stage is an in-process handler that reacts to
/// the previous stage's event and publishes its own (`data_ready` → `signals_ready` →
/// `validated_ready` → `approved_ready` → `executed_ready` → `audit_ready`).
///
/// Because a publish awaits its handlers, publishing `data_ready` returns once the chain
/// has run; the iteration completes when audit finishes, so a slow third-party handler on
/// some event delays neither the result nor the deadline.
public final class EventDrivenOrchestrator: Orchestrator {
    public let mode = OrchestratorMode.async
    let core: PipelineCore

    /// - Parameter tradingState: the kill switch, whose halt triggers see every finished
    ///   iteration that is not a dry run (nil: no triggers).
    public init(
        bus: EventBus, agents: TradingAgents, metrics: PipelineMetrics = PipelineMetrics(),
        stageHandlers: any StageHandlerSource = NoStageHandlers(), defaultSymbols: [String],
        defaultTimeout: Duration = .seconds(300), iterationIDPrefix: String = "it",
        clock: @escaping @Sendable () -> Date = { Date() }, tradingState: TradingStateController? = nil,
        logger: Logger = Logger(label: "tradewire.pipeline")
    ) {
        core = PipelineCore(
            bus: bus, agents: agents, metrics: metrics, stageHandlers: stageHandlers, defaultSymbols: defaultSymbols,
            defaultTimeout: defaultTimeout, iterationIDPrefix: iterationIDPrefix, clock: clock,
            tradingState: tradingState, logger: logger)
        subscribeStages()
    }

    public var bus: EventBus { core.bus }
    public var metrics: PipelineMetrics { core.metrics }

    public func continueNumbering(after number: Int) { core.continueNumbering(after: number) }

    private func subscribeStages() {
        let core = self.core
        func on(
            _ event: PipelineEvent, _ name: String,
            _ react: @escaping @Sendable (IterationContext, PipelinePayload) async -> Void
        ) {
            // Patterns are literal event names, which always validate.
            let pattern = try! EventPattern(event.rawValue)
            core.bus.subscribe(
                pattern, owner: .inProcess("pipeline.\(name)"),
                handler: .async { published in
                    guard let envelope = published.data(as: PipelineEnvelope.self), let context = envelope.context
                    else {
                        core.logger.debug(
                            "pipeline.event.ignored",
                            metadata: ["event.type": "\(published.type)", "event.seq": "\(published.seq)"])
                        return
                    }
                    guard !context.isAbandoned else { return }
                    await react(context, envelope.payload)
                })
        }
        on(.dataReady, "strategy") { context, payload in
            guard case .marketData(let marketData) = payload else { return }
            let signals = await core.stages.strategy(context, marketData: marketData)
            await core.publish(.signalsReady, .signals(signals), for: context)
        }
        on(.signalsReady, "quant") { context, payload in
            guard case .signals(let signals) = payload else { return }
            let validated = await core.stages.quant(context, signals: signals)
            await core.publish(.validatedReady, .signals(validated), for: context)
        }
        on(.validatedReady, "risk") { context, payload in
            guard case .signals(let validated) = payload else { return }
            let approved = await core.stages.risk(context, validated: validated)
            guard !context.isAbandoned else { return }
            await core.publish(.approvedReady, .signals(approved), for: context)
        }
        on(.approvedReady, "execution") { context, payload in
            guard case .signals(let approved) = payload else { return }
            let results = await core.stages.execution(context, approved: approved)
            guard !context.isAbandoned else { return }
            await core.publish(.executedReady, .executions(results), for: context)
        }
        on(.executedReady, "audit") { context, payload in
            guard case .executions(let results) = payload else { return }
            let result = await core.stages.audit(context, executions: results)
            await core.publish(.auditReady, .audit(result.auditReport), for: context)
            context.outcome.fulfill(.completed(result))
        }
    }

    public func run(_ request: IterationRequest) async throws(PipelineError) -> IterationResult {
        let context = core.makeContext(request)
        let core = self.core
        let outcome = await core.runWithDeadline(context) {
            let symbols = context.progress.withLock { $0.symbols }
            let marketData = await core.stages.data(context, symbols: symbols)
            guard !marketData.isEmpty else {
                context.outcome.fulfill(.noMarketData(context.progress.withLock { $0.errors }))
                return
            }
            await core.publish(.dataReady, .marketData(marketData), for: context)
        }
        return try core.result(of: outcome, context)
    }

    public func publishClientEvent(_ event: PipelineEvent, payload: PipelinePayload, metadata: JSONObject)
        -> ClientEventPublication
    {
        core.publishClientEvent(event, payload: payload, metadata: metadata) { _, published in
            await published.handlersFinished()
        }
    }
}
