import TradewireBus
import TradewirePipeline

/// The pipeline the daemon serves: the bus it publishes on (and its journal), the
/// orchestrator that runs iterations (with the remote stage groups plugged in), and the
/// continuous loop.
public struct PipelineHost: Sendable {
    public let bus: EventBus
    public let orchestrator: any Orchestrator
    public let loop: PipelineLoop
    /// Where the bus keeps its events (nil: ephemeral).
    public let journal: (any EventJournal)?
    /// How long the journal keeps them (`capacity` of history answers).
    public let retention: JournalRetentionPolicy

    public init(
        bus: EventBus, orchestrator: any Orchestrator, loop: PipelineLoop, journal: (any EventJournal)? = nil,
        retention: JournalRetentionPolicy = JournalRetentionPolicy()
    ) {
        self.bus = bus
        self.orchestrator = orchestrator
        self.loop = loop
        self.journal = journal
        self.retention = retention
    }
}
