import TradewireBus
import TradewirePipeline

/// The pipeline the daemon serves: the bus it publishes on, the orchestrator that runs
/// iterations (with the remote stage groups plugged in), and the continuous loop.
public struct PipelineHost: Sendable {
    public let bus: EventBus
    public let orchestrator: any Orchestrator
    public let loop: PipelineLoop

    public init(bus: EventBus, orchestrator: any Orchestrator, loop: PipelineLoop) {
        self.bus = bus
        self.orchestrator = orchestrator
        self.loop = loop
    }
}
