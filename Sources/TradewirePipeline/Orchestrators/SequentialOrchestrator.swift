import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireTrading

/// Calls the stages one after another (the original's sync orchestrator, with its bugs
/// fixed). It still publishes the six pipeline events, in order, for observers.
public final class SequentialOrchestrator: Orchestrator {
    public let mode = OrchestratorMode.sync
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
    }

    public var bus: EventBus { core.bus }
    public var metrics: PipelineMetrics { core.metrics }

    public func continueNumbering(after number: Int) { core.continueNumbering(after: number) }

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
            await core.publish(.dataReady, .marketData(marketData), for: context, awaitHandlers: false)
            await Self.chain(from: .dataReady, context: context, core: core, marketData: marketData)
        }
        return try core.result(of: outcome, context)
    }

    public func publishClientEvent(_ event: PipelineEvent, payload: PipelinePayload, metadata: JSONObject)
        -> ClientEventPublication
    {
        core.publishClientEvent(event, payload: payload, metadata: metadata) { context, _ in
            await Self.chain(from: event, context: context, core: self.core, payload: payload)
        }
    }

    /// Runs the stages after `event` (one that starts an iteration) directly, publishing each
    /// stage's event for observers.
    static func chain(
        from event: PipelineEvent, context: IterationContext, core: PipelineCore,
        marketData: [String: MarketData]? = nil, payload: PipelinePayload? = nil
    ) async {
        let stages = core.stages
        var signals: [TradingSignal] = []
        var validated: [TradingSignal] = []
        var approved: [TradingSignal] = []
        switch (event, payload) {
        case (.signalsReady, .signals(let s)?): signals = s
        case (.validatedReady, .signals(let s)?): validated = s
        default: break  // data_ready: the market data is in the context (run or adopted)
        }
        if event == .dataReady {
            let data = marketData ?? context.progress.withLock { $0.marketData }
            signals = await stages.strategy(context, marketData: data)
            await core.publish(.signalsReady, .signals(signals), for: context, awaitHandlers: false)
        }
        if event <= .signalsReady {
            validated = await stages.quant(context, signals: signals)
            await core.publish(.validatedReady, .signals(validated), for: context, awaitHandlers: false)
        }
        if event <= .validatedReady {
            approved = await stages.risk(context, validated: validated)
            guard !context.isAbandoned else { return }
            await core.publish(.approvedReady, .signals(approved), for: context, awaitHandlers: false)
        }
        let executions = await stages.execution(context, approved: approved)
        guard !context.isAbandoned else { return }
        await core.publish(.executedReady, .executions(executions), for: context, awaitHandlers: false)
        let result = await stages.audit(context, executions: executions)
        let audit = await core.publish(.auditReady, .audit(result.auditReport), for: context, awaitHandlers: false)
        // The result is an acknowledgement: with a journal, the iteration's events are
        // committed (and in history) before it is returned, as in the event-driven chain.
        await audit.dispatched()
        context.outcome.fulfill(.completed(result))
    }

    /// Puts a client's event data into a fresh context as if the earlier stages had produced it.
    static func seed(
        _ context: IterationContext, core: PipelineCore, with event: PipelineEvent, payload: PipelinePayload
    ) {
        switch payload {
        case .marketData(let md):
            core.stages.adopt(context, marketData: md)
        case .signals(let signals):
            context.update { p in
                p.symbols = Array(Set(signals.map(\.symbol))).sorted()
                p.signals = signals
                if event == .validatedReady { p.validated = signals }
            }
        case .executions, .audit:
            // Never seeded: those events start no iteration (PipelineCore.publishClientEvent).
            break
        }
        context.finished(event.completedStage)
    }
}

extension PipelineEvent: Comparable {
    public static func < (lhs: PipelineEvent, rhs: PipelineEvent) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
