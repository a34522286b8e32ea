import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import TradewireServer

/// The read-only HTTP side of the daemon (`--http`, PROTOCOL §12) as a `Service`: a
/// Hummingbird server for `/metrics`, `/healthz`, `/events`, the dashboard at `/` and its
/// `/api/` routes. It reads the daemon through the interfaces the RPC methods use and changes
/// nothing.
///
/// Give it before the socket server in the service group: services stop in reverse order,
/// so while the socket server drains, this one still serves (`/healthz` answers 503); then
/// its own graceful shutdown ends every event stream and stops the server.
public final class HTTPServer: Service, Sendable {
    private let daemon: Daemon
    private let configuration: HTTPConfiguration
    private let registry: PrometheusCollectorRegistry
    private let tradingState: @Sendable () -> Int
    private let logger: Logger
    private let onListening: @Sendable (String) -> Void
    /// Made with the server: without a journal it books fills from the first iteration on.
    private let equityCurve: EquityCurve

    /// - Parameters:
    ///   - registry: what `/metrics` renders (``TradewireMetricsFactory/bootstrap()``'s).
    ///   - tradingState: the trading state as `tradewire_trading_state` counts it (0 active,
    ///     1 reducing, 2 halted).
    ///   - onListening: called with `ADDR:PORT` (the real port when 0 was asked) once
    ///     connections are accepted.
    public init(
        daemon: Daemon, configuration: HTTPConfiguration, registry: PrometheusCollectorRegistry,
        tradingState: @escaping @Sendable () -> Int = { 0 }, logger: Logger = Logger(label: "tradewire.http"),
        onListening: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.daemon = daemon
        self.configuration = configuration
        self.registry = registry
        self.tradingState = tradingState
        self.logger = logger
        self.onListening = onListening
        self.equityCurve = EquityCurve(daemon: daemon)
    }

    public func run() async throws {
        let streams = EventStreams(maximum: configuration.maximumEventStreams)
        let responder = DaemonResponder(
            daemon: daemon, configuration: configuration,
            collector: MetricsCollector(
                registry: registry, daemon: daemon, tradingState: tradingState, streams: streams),
            streams: streams, api: DashboardAPI(daemon: daemon, streams: streams, equity: equityCurve), logger: logger)
        let address = configuration.address
        let logger = self.logger
        let onListening = self.onListening
        let listening = Atomic(false)
        let idle = configuration.idleTimeout.components
        let application = Application(
            responder: responder,
            server: .http1(
                configuration: .init(
                    idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000))),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port),
                // Every stream plus room for scrapes and health checks.
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumEventStreams + 64)),
            onServerRunning: { channel in
                listening.store(true, ordering: .relaxed)
                let bound = HTTPAddress.bound(channel.localAddress, fallback: address)
                logger.info("http.listening", metadata: ["http.address": "\(bound)"])
                onListening(bound)
            },
            logger: logger)
        do {
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: {
                streams.closeAll()
            }
        } catch  where !listening.load(ordering: .relaxed) {
            throw HTTPServerError(address: address, underlying: error)
        }
        logger.info("http.stopped")
    }
}

/// The HTTP server could not start (its address is in use or not local, say).
public struct HTTPServerError: Error, CustomStringConvertible {
    public let address: HTTPAddress
    public let underlying: any Error

    public var description: String { "cannot listen for HTTP on \(address): \(underlying)" }
}

extension HTTPAddress {
    /// `ADDR:PORT` of a bound socket (IPv6 in brackets).
    static func bound(_ socket: SocketAddress?, fallback: HTTPAddress) -> String {
        guard let socket, let ip = socket.ipAddress, let port = socket.port else { return fallback.description }
        if case .v6 = socket { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
