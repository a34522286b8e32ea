import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// The daemon's shared state: the bus, the orchestrator and loop, the live connections and
/// the method table. One per process; every connection's handlers reach it.
public final class Daemon: Sendable {
    /// Version reported by `get_status` and `rpc.discover`.
    public static let version = "0.1.0"
    public static let apiLevel = 2

    public let bus: EventBus
    public let orchestrator: any Orchestrator
    public let loop: PipelineLoop
    public let configuration: ServerConfiguration
    public let logger: Logger
    let startedAt = ContinuousClock.now
    let dispatcher: RPCDispatcher<RequestContext>
    let discoverDocument: [UInt8]

    private struct Connections {
        var live: [Int: ServerConnection] = [:]
        var nextID = 1
        var droppedByClosed = 0
    }
    private let connections = Mutex(Connections())
    private let draining = Mutex(false)
    private let work = Mutex(0)
    private let shutdownHook = Mutex<(@Sendable (String) -> Void)?>(nil)

    public init(
        bus: EventBus, orchestrator: any Orchestrator, loop: PipelineLoop, configuration: ServerConfiguration,
        logger: Logger
    ) {
        self.bus = bus
        self.orchestrator = orchestrator
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        var registry = MethodRegistry<RequestContext>()
        DaemonMethods.register(into: &registry)
        let dispatcher = registry.freeze()
        self.dispatcher = dispatcher
        self.discoverDocument = JSONWriter.encode(
            dispatcher.openRPCDocument(title: "tradewired", version: Self.version))
    }

    public var uptimeSeconds: Double {
        let d = ContinuousClock.now - startedAt
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// True once a graceful stop began: new requests get -32000.
    public var isDraining: Bool { draining.withLock { $0 } }

    /// Called by the `shutdown` method; the executable wires it to the service group.
    public func onShutdownRequest(_ hook: @escaping @Sendable (String) -> Void) {
        shutdownHook.withLock { $0 = hook }
    }

    func requestShutdown(reason: String) {
        let hook = shutdownHook.withLock { $0 }
        hook?(reason)
    }

    /// Enters draining and tells every connection why.
    func beginDrain(reason: String) {
        let first = draining.withLock { d in
            defer { d = true }
            return !d
        }
        guard first else { return }
        for connection in liveConnections {
            connection.notify(method: "shutdown", params: ["reason": JSONValue(reason)])
        }
    }

    /// Deferred requests running anywhere in the daemon.
    var pendingWork: Int { work.withLock { $0 } }
    func workStarted() { work.withLock { $0 += 1 } }
    func workFinished() { work.withLock { $0 -= 1 } }

    // MARK: connections

    func makeConnectionID() -> Int {
        connections.withLock { c in
            defer { c.nextID += 1 }
            return c.nextID
        }
    }

    /// Admits a connection unless `maxConnections` are already served.
    func register(_ connection: ServerConnection) -> Bool {
        connections.withLock { c in
            guard c.live.count < configuration.maxConnections else { return false }
            c.live[connection.id] = connection
            return true
        }
    }

    func unregister(_ connection: ServerConnection) {
        bus.unsubscribeAll(owner: connection.owner)
        let dropped = connection.outbox.droppedTotal
        connections.withLock { c in
            c.live[connection.id] = nil
            c.droppedByClosed += dropped
        }
    }

    var liveConnections: [ServerConnection] { connections.withLock { Array($0.live.values) } }

    var connectionCount: Int { connections.withLock { $0.live.count } }

    /// Events dropped for slow subscribers, over the daemon's life.
    var eventsDropped: Int {
        let (live, closed) = connections.withLock { ($0.live.values.map { $0 }, $0.droppedByClosed) }
        return closed + live.reduce(0) { $0 + $1.outbox.droppedTotal }
    }
}
