import TradewireBus
import TradewireJSON

/// A pipeline event's payload as it travels in-process: the stage's typed output together
/// with the iteration it belongs to.
///
/// The event-driven orchestrator's stages take their iteration from here, so an event a
/// client published (no iteration, or one it did not start) can never drive a stage.
/// Remote subscribers and history see only ``payload``'s JSON.
public struct PipelineEnvelope: EventPayload {
    public let payload: PipelinePayload
    /// The iteration whose stage published the event; nil for a client's event that starts none.
    let context: IterationContext?

    init(_ payload: PipelinePayload, context: IterationContext?) {
        self.payload = payload
        self.context = context
    }

    public var jsonTypeName: String { payload.jsonTypeName }
    public var estimatedJSONBytes: Int { payload.estimatedJSONBytes }
    public func encodeJSON(to writer: inout JSONWriter) { payload.encodeJSON(to: &writer) }
}

extension Event {
    /// The typed payload of a pipeline event published in this process.
    public var pipelinePayload: PipelinePayload? { data(as: PipelineEnvelope.self)?.payload }
}
