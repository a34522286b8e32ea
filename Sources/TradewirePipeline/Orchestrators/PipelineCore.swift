import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireTrading

/// What both orchestrators share: the bus, the stages, iteration numbering, live contexts
/// and the deadline race.
final class PipelineCore: Sendable {
    let bus: EventBus
    let stages: PipelineStages
    let defaultSymbols: [String]
    let defaultTimeout: Duration
    let iterationIDPrefix: String
    let logger: Logger
    /// Sees every finished iteration that is not a dry run (the halt triggers).
    let tradingState: TradingStateController?
    private let counter = Mutex(0)

    init(
        bus: EventBus, agents: TradingAgents, metrics: PipelineMetrics, stageHandlers: any StageHandlerSource,
        defaultSymbols: [String], defaultTimeout: Duration, iterationIDPrefix: String,
        clock: @escaping @Sendable () -> Date, tradingState: TradingStateController?, logger: Logger
    ) {
        self.bus = bus
        self.tradingState = tradingState
        self.stages = PipelineStages(
            agents: agents, metrics: metrics, clock: clock, logger: logger, handlerSource: stageHandlers,
            reportFailure: { context, handler, failure in
                Self.publishStageFailed(bus: bus, context: context, handler: handler, failure: failure, logger: logger)
            })
        self.defaultSymbols = defaultSymbols
        self.defaultTimeout = defaultTimeout
        self.iterationIDPrefix = iterationIDPrefix
        self.logger = logger
    }

    var metrics: PipelineMetrics { stages.metrics }

    func continueNumbering(after number: Int) {
        counter.withLock { $0 = max($0, number) }
    }

    func makeContext(_ request: IterationRequest) -> IterationContext {
        let number = counter.withLock { n in
            n += 1
            return n
        }
        let id = "\(iterationIDPrefix)-\(number)"
        let context = IterationContext(
            number: number, id: id, request: request, asOf: request.replay?.asOf ?? stages.clock(),
            timeout: request.timeout ?? defaultTimeout)
        let symbols: [String] =
            if let symbols = request.symbols { symbols } else if let supplied = request.marketData {
                Array(supplied.keys)
            } else { defaultSymbols }
        var seen = Set<String>()
        let unique = symbols.filter { seen.insert($0).inserted }.sorted()
        context.update { $0.symbols = unique }
        return context
    }

    /// `metadata` with the iteration's `iteration` and `iteration_id` set (PROTOCOL §8), plus
    /// `dry_run: true` for a dry run and `loop: true` for a loop iteration (only when true),
    /// which the journal's fold needs: a dry run's events change no state on recovery.
    private static func stamped(_ metadata: JSONObject, _ context: IterationContext) -> JSONObject {
        var stamped = metadata
        stamped["iteration"] = JSONValue(context.number)
        stamped["iteration_id"] = JSONValue(context.id)
        if context.request.dryRun { stamped["dry_run"] = true }
        if context.request.fromLoop { stamped["loop"] = true }
        if let replay = context.request.replay { stamped["replay_of"] = JSONValue(replay.of) }
        return stamped
    }

    /// Publishes a pipeline event stamped with the iteration's metadata (other metadata kept).
    ///
    /// With `awaitHandlers` false (the sequential orchestrator, whose events are for observers)
    /// in-process handlers still run, but the chain does not wait for them.
    @discardableResult
    func publish(
        _ event: PipelineEvent, _ payload: PipelinePayload, for context: IterationContext, extra: JSONObject = [:],
        awaitHandlers: Bool = true
    ) async -> PublishedEvent {
        let published = bus.publishRecording(
            event.rawValue, payload: PipelineEnvelope(payload, context: context), metadata: Self.stamped(extra, context)
        )
        if awaitHandlers {
            await published.handlersFinished()
        } else if published.hasPendingHandlers {
            Task { await published.handlersFinished() }
        }
        return published
    }

    /// Runs `body` for `context` and waits for its outcome or the deadline, whichever comes
    /// first. `body` runs in its own task so that a hung handler cannot hold the caller past
    /// the deadline; after a timeout the context is abandoned (no later stage trades).
    func runWithDeadline(
        _ context: IterationContext, body: @escaping @Sendable () async -> Void
    ) async -> IterationContext.Outcome {
        let deadline = context.deadline - ContinuousClock.now
        let work = Task { await body() }
        let timer = Task {
            try? await Task.sleep(for: deadline)
            if !Task.isCancelled {
                let stage = context.progress.withLock { p in
                    p.abandoned = true
                    return p.lastStage
                }
                context.outcome.fulfill(.timedOut(stage))
            }
        }
        let outcome = await context.outcome.wait()
        timer.cancel()
        if case .timedOut = outcome { work.cancel() }
        stages.metrics.recentIterations.record(context, outcome)
        switch outcome {
        case .completed(let result): stages.metrics.recordRun(durationSeconds: result.durationSeconds)
        case .noMarketData: stages.metrics.recordFailure()
        case .timedOut(let stage):
            stages.metrics.recordTimeout()
            logger.warning(
                "pipeline.iteration.timeout",
                metadata: [
                    "iteration": "\(context.number)", "iteration.id": "\(context.id)", "stage": "\(stage.rawValue)",
                ])
        }
        if let tradingState, !context.request.dryRun {
            await tradingState.iterationFinished(firstError: Self.firstError(of: outcome))
        }
        return outcome
    }

    /// The first error of a finished iteration, as the halt-on-errors reason quotes it (nil
    /// when it had none; an iteration without market data or past its deadline has one).
    static func firstError(of outcome: IterationContext.Outcome) -> String? {
        func text(_ error: StageError) -> String {
            "\(error.stage.rawValue)\(error.symbol.map { " \($0)" } ?? ""): \(error.message)"
        }
        switch outcome {
        case .completed(let result): return result.errors.first.map(text)
        case .noMarketData(let errors): return errors.first.map(text) ?? "no market data for any symbol"
        case .timedOut(let stage): return "deadline passed after stage \(stage.rawValue)"
        }
    }

    /// A client's pipeline event (PROTOCOL §9). One that starts an iteration gets a new
    /// context seeded with its data and is recorded (seq assigned) now, in the caller's
    /// order; the returned reaction fetches market data where risk needs it, then lets
    /// `react` run the later stages under the default deadline. Any other pipeline event is
    /// recorded and delivered, and drives nothing.
    func publishClientEvent(
        _ event: PipelineEvent, payload: PipelinePayload, metadata: JSONObject,
        react: @escaping @Sendable (IterationContext, PublishedEvent) async -> Void
    ) -> ClientEventPublication {
        guard event.startsIteration else {
            let published = bus.publishRecording(
                event.rawValue, payload: PipelineEnvelope(payload, context: nil), metadata: metadata)
            return ClientEventPublication(published: published) {
                await published.handlersFinished()
                return ClientEventOutcome(published: published, iteration: nil)
            }
        }
        let context = makeContext(IterationRequest())
        SequentialOrchestrator.seed(context, core: self, with: event, payload: payload)
        let published = bus.publishRecording(
            event.rawValue, payload: PipelineEnvelope(payload, context: context),
            metadata: Self.stamped(metadata, context))
        return ClientEventPublication(published: published) {
            let outcome = await self.runWithDeadline(context) {
                if event != .dataReady {
                    // Signals from outside: risk sizes them on the provider's market data.
                    _ = await self.stages.data(context, symbols: context.progress.withLock { $0.symbols })
                }
                await react(context, published)
            }
            let result: IterationResult? = if case .completed(let result) = outcome { result } else { nil }
            // The publisher is answered only once its own event is delivered (committed).
            await published.dispatched()
            return ClientEventOutcome(
                published: published,
                iteration: ClientIteration(number: context.number, id: context.id, result: result))
        }
    }

    func result(of outcome: IterationContext.Outcome, _ context: IterationContext) throws(PipelineError)
        -> IterationResult
    {
        switch outcome {
        case .completed(let result):
            logger.info(
                "pipeline.iteration.completed",
                metadata: [
                    "iteration": "\(result.iteration)", "signals": "\(result.signals.count)",
                    "approved": "\(result.approvedSignals.count)", "executed": "\(result.executedCount)",
                    "duration.seconds": "\(result.durationSeconds)",
                ])
            return result
        case .noMarketData(let errors):
            throw .noMarketData(iteration: context.number, iterationID: context.id, errors: errors)
        case .timedOut(let stage):
            throw .timeout(iteration: context.number, iterationID: context.id, stage: stage)
        }
    }

    /// Publishes `stage_failed` for a failed handler call (PROTOCOL §9), without waiting for
    /// in-process handlers.
    static func publishStageFailed(
        bus: EventBus, context: IterationContext, handler: any StageHandler, failure: StageFailure, logger: Logger
    ) {
        logger.warning(
            "pipeline.stage.handler_failed",
            metadata: [
                "stage": "\(handler.stage.rawValue)", "handler.name": "\(handler.name)",
                "iteration.id": "\(context.id)", "reason": "\(failure.reason.rawValue)",
                "policy": "\(handler.onFailure.rawValue)",
            ])
        let data: JSONValue = [
            "stage": JSONValue(handler.stage.rawValue), "name": JSONValue(handler.name),
            "iteration_id": JSONValue(context.id), "reason": JSONValue(failure.reason.rawValue),
            "message": JSONValue(failure.message), "policy": JSONValue(handler.onFailure.rawValue),
        ]
        let published = bus.publishRecording("stage_failed", payload: data, metadata: stamped([:], context))
        if published.hasPendingHandlers { Task { await published.handlersFinished() } }
    }
}
