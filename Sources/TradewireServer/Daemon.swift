import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// The daemon, composed of its parts: the pipeline host, the connection registry, the
/// stage registry and the frozen method table. One per process; every connection's
/// handlers reach it.
public final class Daemon: Sendable {
    /// Version reported by `get_status` and `rpc.discover`.
    public static let version = "0.2.0"
    public static let apiLevel = 2

    public let pipeline: PipelineHost
    public let connections: ConnectionRegistry
    public let stages: StageRegistry
    /// Durable consumers (PROTOCOL §11).
    public let consumers: ConsumerRegistry
    public let configuration: ServerConfiguration
    public let logger: Logger
    let startedAt = ContinuousClock.now
    /// New at every start (`get_status.instance_id`).
    public let instanceID = UUID().uuidString.lowercased()
    let dispatcher: RPCDispatcher<RequestContext>
    let discoverDocument: [UInt8]
    private let shutdownHook = Mutex<(@Sendable (String) -> Void)?>(nil)
    private let clusterHooks = Mutex<ClusterHooks?>(nil)

    private let shared = Mutex<SharedConsumers?>(nil)

    /// Makes this daemon a cluster node (PROTOCOL §13); its consumers become the store's
    /// when the hooks give one.
    public func setCluster(_ hooks: ClusterHooks) {
        clusterHooks.withLock { $0 = hooks }
        if let store = hooks.consumers {
            shared.withLock { $0 = SharedConsumers(store: store, bus: bus, logger: consumers.logger) }
        }
    }

    /// Consumers shared through a cluster's store (nil outside a cluster: ``consumers``).
    public var sharedConsumers: SharedConsumers? { shared.withLock { $0 } }

    /// `get_status.cluster` (null outside a cluster).
    public var clusterStatus: JSONValue { clusterHooks.withLock { $0 }?.status() ?? .null }

    /// False on a cluster node that does not lead (true outside a cluster).
    public var mayTrade: Bool { clusterHooks.withLock { $0 }?.isLeader() ?? true }

    /// The shared journal's history reader (nil outside a cluster).
    var clusterHistory: (@Sendable (JournalQuery) async -> Result<ClusterHistoryPage, RPCError>)? {
        clusterHooks.withLock { $0 }?.history
    }

    /// How a node that does not trade hands a non-dry `run_pipeline` to the leader (nil
    /// outside a cluster).
    var handOff:
        (@Sendable (_ method: String, _ params: String, _ timeout: Duration?) async -> Result<[UInt8], RPCError>)?
    {
        clusterHooks.withLock { $0 }?.handOff
    }

    /// - Parameter stages: the registry the orchestrator was built with (its
    ///   ``StageHandlerSource``).
    public init(pipeline: PipelineHost, stages: StageRegistry, configuration: ServerConfiguration, logger: Logger) {
        self.pipeline = pipeline
        self.stages = stages
        self.connections = ConnectionRegistry(maximum: configuration.maxConnections)
        self.consumers = ConsumerRegistry(
            bus: pipeline.bus, journal: pipeline.journal, logger: Logger(label: "tradewire.consumers"))
        self.configuration = configuration
        self.logger = logger
        var registry = MethodRegistry<RequestContext>()
        DaemonMethods.register(into: &registry)
        StageMethods.register(into: &registry)
        PortfolioMethods.register(into: &registry)
        ConsumerMethods.register(into: &registry)
        TradingStateMethods.register(into: &registry)
        let dispatcher = registry.freeze()
        self.dispatcher = dispatcher
        self.discoverDocument = JSONWriter.encode(
            dispatcher.openRPCDocument(title: "tradewired", version: Self.version))
    }

    public var bus: EventBus { pipeline.bus }

    public var uptimeSeconds: Double {
        (ContinuousClock.now - startedAt).inSeconds
    }

    /// Called by the `shutdown` method; the executable wires it to the service group.
    public func onShutdownRequest(_ hook: @escaping @Sendable (String) -> Void) {
        shutdownHook.withLock { $0 = hook }
    }

    func requestShutdown(reason: String) {
        let hook = shutdownHook.withLock { $0 }
        hook?(reason)
    }

    /// A connection closed: its subscriptions and stage memberships go with it.
    func connectionClosed(_ connection: ServerConnection) {
        bus.unsubscribeAll(owner: connection.owner)
        stages.connectionClosed(connection.id)
        consumers.connectionClosed(connection.id)
        sharedConsumers?.connectionClosed(connection.id)
        connections.remove(connection)
    }
}
