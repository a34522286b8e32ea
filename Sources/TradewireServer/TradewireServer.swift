import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TradewirePipeline
import TradewireRPC

#if canImport(Glibc)
    import Glibc
#endif

/// The Unix-socket listener as a `Service`: binds (or adopts systemd's socket), accepts
/// connections into ``ConnectionHandler``s, and on graceful shutdown stops accepting, tells
/// every connection, lets running work finish within the grace period, closes connections
/// and removes its socket file.
public final class TradewireServer: Service, Sendable {
    public let daemon: Daemon
    private let group: MultiThreadedEventLoopGroup
    private let onListening: @Sendable (String) -> Void
    private let serverChannel = Mutex<(any Channel)?>(nil)
    private let childChannels = ChannelSet()

    /// - Parameter onListening: called once connections are accepted (prints `listening on PATH`).
    public init(daemon: Daemon, onListening: @escaping @Sendable (String) -> Void = { _ in }) {
        self.daemon = daemon
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, daemon.configuration.threads))
        self.onListening = onListening
    }

    /// Binds without serving yet (so start-up errors surface before the service group runs).
    public func bind() async throws {
        let configuration = daemon.configuration
        let daemon = self.daemon
        let children = childChannels
        let acceptLogger = AcceptErrorLogger(logger: daemon.logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(acceptLogger)
                }
            }
            .childChannelOption(.autoRead, value: true)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                let key = ObjectIdentifier(channel)
                children.insert(channel, key: key)
                channel.closeFuture.whenComplete { _ in children.remove(key) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(daemon: daemon))
                }
            }
        let channel: any Channel
        if let inherited = configuration.inheritedSocket {
            channel = try await bootstrap.withBoundSocket(inherited).get()
        } else {
            try SocketFile.prepare(configuration.socketPath, defaultDirectory: SocketPath.fallbackDirectory)
            // bind(2) creates the file with its final mode through the umask: a path is never
            // chmod'ed, so a symlink swapped in after the bind cannot redirect a chmod.
            let previous = umask(mode_t(0o777 & ~configuration.socketMode))
            defer { umask(previous) }
            channel = try await bootstrap.bind(unixDomainSocketPath: configuration.socketPath).get()
        }
        serverChannel.withLock { $0 = channel }
    }

    public func run() async throws {
        if serverChannel.withLock({ $0 }) == nil { try await bind() }
        guard let channel = serverChannel.withLock({ $0 }) else { return }
        let path = daemon.configuration.socketPath
        daemon.logger.info(
            "server.listening",
            metadata: ["socket": "\(path)", "inherited": "\(daemon.configuration.inheritedSocket != nil)"])
        onListening(path)
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.daemon.connections.beginDrain(reason: "daemon is shutting down")
            channel.close(promise: nil)
        }
        await drain()
    }

    /// The graceful stop after the listener closed.
    private func drain() async {
        let daemon = self.daemon
        daemon.connections.beginDrain(reason: "daemon is shutting down")
        let grace = ContinuousClock.now + daemon.configuration.shutdownGrace
        // The loop's in-flight iteration finishes (bounded by the grace period).
        let loopStopped = Mutex(false)
        Task {
            _ = await daemon.pipeline.loop.stop()
            loopStopped.withLock { $0 = true }
        }
        while !(daemon.connections.pendingWork == 0 && loopStopped.withLock({ $0 })), ContinuousClock.now < grace {
            try? await Task.sleep(for: .milliseconds(10))
        }
        // Every connection closes once what it was sent (events of acknowledged publishes,
        // answers, the shutdown notice) has reached its socket; what is still open when the
        // grace period ends (at least a second from now) is closed as it is.
        for connection in daemon.connections.live { connection.closeWhenFlushed() }
        let flushDeadline = max(grace, ContinuousClock.now + .seconds(1))
        while !childChannels.all.isEmpty, ContinuousClock.now < flushDeadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let children = childChannels.all
        for connection in daemon.connections.live where !connection.outbox.isEmpty {
            daemon.logger.warning(
                "server.shutdown.unflushed",
                metadata: ["connection": "\(connection.id)", "bytes": "\(connection.outbox.queuedBytes)"])
        }
        for child in children { try? await child.close() }
        if daemon.configuration.inheritedSocket == nil { SocketFile.remove(daemon.configuration.socketPath) }
        try? await group.shutdownGracefully()
        daemon.logger.info("server.stopped", metadata: ["connections.forced": "\(children.count)"])
    }
}

/// The accepted connections' channels, for closing them at shutdown.
final class ChannelSet: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    func insert(_ channel: any Channel, key: ObjectIdentifier) { channels.withLock { $0[key] = channel } }
    func remove(_ key: ObjectIdentifier) { _ = channels.withLock { $0.removeValue(forKey: key) } }
    var all: [any Channel] { channels.withLock { Array($0.values) } }
}

extension Daemon {
    /// Serves one connection over an already-connected stream socket (one end of a
    /// `socketpair`) exactly as an accepted one, peer credentials included: the in-process
    /// transport of TradewireTesting, which needs no socket path and no listener.
    public func serve(connectedSocket fd: Int32, on group: any EventLoopGroup) async throws {
        let daemon = self
        _ = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(daemon: daemon))
                }
            }
            .withConnectedSocket(fd).get()
    }
}
