import TradewireBus
import TradewireJSON

/// How the pipeline's stages are chained.
public enum OrchestratorMode: String, Sendable, CaseIterable {
    /// Stages react to bus events (`data_ready` → … → `audit_ready`).
    case async
    /// Stages are called one after another; the same six events are still published for observers.
    case sync
}

/// What happened when a client published a pipeline event.
public struct ClientEventOutcome: Sendable {
    public let published: PublishedEvent
    /// The iteration the event started (nil for `approved_ready`, `executed_ready` and
    /// `audit_ready`, which are recorded and delivered but drive no stage).
    public let iteration: ClientIteration?
}

/// The iteration a client's event started.
public struct ClientIteration: Sendable {
    public let number: Int
    public let id: String
    /// The iteration's result when the chain reached audit before the deadline.
    public let result: IterationResult?

    /// True when the chain reached audit before the deadline.
    public var completed: Bool { result != nil }
}

/// Runs iterations. Both implementations return identical results on identical data.
public protocol Orchestrator: Sendable {
    var mode: OrchestratorMode { get }
    var bus: EventBus { get }
    var metrics: PipelineMetrics { get }

    /// Runs one iteration to its end, or throws when no symbol had data or the deadline passed.
    func run(_ request: IterationRequest) async throws(PipelineError) -> IterationResult

    /// Numbers the next iteration above `number` (recovery: iteration numbers continue
    /// across restarts). Never lowers the counter.
    func continueNumbering(after number: Int)

    /// Publishes a client's pipeline event: the event is recorded (its seq assigned) before
    /// this returns. A `data_ready`, `signals_ready` or `validated_ready` starts a new
    /// iteration, and awaiting ``ClientEventPublication/reaction()`` runs the stages after it
    /// (quant where it comes after, and risk always) under the default deadline; a
    /// `signals_ready`/`validated_ready` iteration fetches its symbols' market data first so
    /// that risk can size. Any other pipeline event drives no stage.
    func publishClientEvent(_ event: PipelineEvent, payload: PipelinePayload, metadata: JSONObject)
        -> ClientEventPublication
}

/// A client's pipeline event, recorded, with the chain still to run.
public struct ClientEventPublication: Sendable {
    public let published: PublishedEvent
    /// Runs the later stages and reports whether the chain completed before the deadline.
    public let reaction: @Sendable () async -> ClientEventOutcome
}
