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
    public let iteration: Int
    public let iterationID: String
    /// True when the chain reached audit before the deadline.
    public let completed: Bool
}

/// Runs iterations. Both implementations return identical results on identical data.
public protocol Orchestrator: Sendable {
    var mode: OrchestratorMode { get }
    var bus: EventBus { get }
    var metrics: PipelineMetrics { get }

    /// Runs one iteration to its end, or throws when no symbol had data or the deadline passed.
    func run(_ request: IterationRequest) async throws(PipelineError) -> IterationResult

    /// Publishes a client's pipeline event in a new iteration: the event is recorded (its seq
    /// assigned) before this returns; awaiting ``ClientEventPublication/reaction()`` lets the
    /// stages after it react, under the default deadline.
    func publishClientEvent(_ event: PipelineEvent, payload: PipelinePayload, metadata: JSONObject)
        -> ClientEventPublication
}

/// A client's pipeline event, recorded, with the chain still to run.
public struct ClientEventPublication: Sendable {
    public let published: PublishedEvent
    /// Runs the later stages and reports whether the chain completed before the deadline.
    public let reaction: @Sendable () async -> ClientEventOutcome
}
