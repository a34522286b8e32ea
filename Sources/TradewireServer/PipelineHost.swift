import Logging
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireTrading

/// The pipeline the daemon serves: the bus it publishes on (and its journal), the
/// orchestrator that runs iterations (with the remote stage groups plugged in), and the
/// continuous loop.
public struct PipelineHost: Sendable {
    public let bus: EventBus
    public let orchestrator: any Orchestrator
    public let loop: PipelineLoop
    /// The agents and the state they share: the broker's books, the risk budget, the audit log.
    public let agents: TradingAgents
    /// Where the bus keeps its events (nil: ephemeral).
    public let journal: (any EventJournal)?
    /// How long the journal keeps them (`capacity` of history answers).
    public let retention: JournalRetentionPolicy
    /// Sets the kill switch of `agents` (PROTOCOL §12).
    public let tradingState: TradingStateController
    let logger = Logger(label: "tradewire.pipeline")

    /// - Parameter tradingState: the controller the orchestrator's halt triggers use (nil: a
    ///   new one without triggers).
    public init(
        bus: EventBus, orchestrator: any Orchestrator, loop: PipelineLoop, agents: TradingAgents,
        journal: (any EventJournal)? = nil,
        retention: JournalRetentionPolicy = JournalRetentionPolicy(), tradingState: TradingStateController? = nil
    ) {
        self.bus = bus
        self.orchestrator = orchestrator
        self.loop = loop
        self.agents = agents
        self.journal = journal
        self.retention = retention
        self.tradingState = tradingState ?? TradingStateController(agents: agents, bus: bus, journal: journal)
    }

    /// The journal state document of the loop's settings.
    static let loopStateKey = "loop"
    /// The journal state document of the durable stage groups.
    static let stageGroupsStateKey = "stage_groups"

    /// Starts (or updates) the loop and keeps its settings in the journal, so a loop that was
    /// running resumes after a restart (PROTOCOL §14).
    public func startLoop(intervalSeconds: Double? = nil, symbols: [String]? = nil) async -> PipelineLoop.Status {
        let status = await loop.start(intervalSeconds: intervalSeconds, symbols: symbols)
        saveLoopState(status)
        return status
    }

    /// Stops the loop and records that it is stopped.
    public func stopLoop() async -> PipelineLoop.Status {
        let status = await loop.stop()
        saveLoopState(status)
        return status
    }

    /// Restarts the loop with its journaled settings when it was running at the last stop.
    /// Returns whether it did.
    public func resumeLoop() async -> Bool {
        guard let journal, let bytes = try? journal.loadState(Self.loopStateKey),
            let saved = try? JSONParser.parse(bytes), saved["running"]?.boolValue == true
        else { return false }
        let interval = saved["interval_seconds"]?.doubleValue.flatMap { $0.isFinite && $0 >= 0.1 ? $0 : nil }
        let symbols = saved["symbols"]?.arrayValue?.compactMap(\.stringValue)
        _ = await loop.start(intervalSeconds: interval, symbols: symbols)
        return true
    }

    private func saveLoopState(_ status: PipelineLoop.Status) {
        guard let journal else { return }
        let document: JSONValue = [
            "running": JSONValue(status.running), "interval_seconds": JSONValue(status.intervalSeconds),
            "symbols": status.symbols.map { symbols in JSONValue.array(symbols.map { JSONValue($0) }) } ?? .null,
        ]
        save(Self.loopStateKey, document, in: journal)
    }

    /// Keeps the durable stage groups in the journal (after any registration change).
    func saveStageGroups(_ registry: StageRegistry) {
        guard let journal else { return }
        save(Self.stageGroupsStateKey, registry.durableGroupsJSON(), in: journal)
    }

    /// Saves a state document; a failure is logged (the running daemon is unaffected; the
    /// next start sees the previous document).
    private func save(_ key: String, _ document: JSONValue, in journal: any EventJournal) {
        do {
            try journal.saveState(key, JSONWriter.encode(document))
        } catch {
            logger.error("journal.state.save_failed", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// Recreates the journaled durable stage groups (at start).
    public func restoreStageGroups(into registry: StageRegistry) {
        guard let journal, let bytes = try? journal.loadState(Self.stageGroupsStateKey),
            let saved = try? JSONParser.parse(bytes)
        else { return }
        registry.restoreDurableGroups(saved)
    }
}
