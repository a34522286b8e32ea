import NIOCore

/// How the listener behaves (PROTOCOL §1, §2, §6, §7).
public struct ServerConfiguration: Sendable {
    public var socketPath: String
    /// Permission bits of the socket file (0600 by default; `--socket-mode 660` widens it).
    public var socketMode: UInt16 = 0o600
    /// Longest message accepted, in bytes before the newline.
    public var maxMessageBytes = 1 << 20
    /// Outbound bytes a connection may have queued before its events are dropped.
    public var outboxBudgetBytes = 8 << 20
    /// Largest answer the daemon builds (a `get_event_history` page): the clients' own
    /// message limit, so an answer never exceeds what a client can read.
    public var maxResponseBytes = 64 << 20
    /// Requests a connection may have in flight before it gets -32001.
    public var maxInFlight = 1024
    /// Clients served at once (`--max-connections`); one more gets a -32001 line and is closed.
    public var maxConnections = 4096
    /// Extra uids and gids allowed to connect (the daemon's own uid and root always are).
    public var allowedUIDs: Set<UInt32> = []
    public var allowedGIDs: Set<UInt32> = []
    /// A listening socket inherited from systemd (LISTEN_FDS): used as is and never unlinked.
    public var inheritedSocket: Int32?
    /// How long a graceful stop waits for running work.
    public var shutdownGrace: Duration = .seconds(10)
    /// Publishes per second one connection may make (`--publish-rate`); nil: no limit.
    public var publishRate: PublishRate?
    /// Event-loop threads.
    public var threads = ServerConfiguration.defaultThreads
    /// One per core.
    public static let defaultThreads = max(1, System.coreCount)
    /// The most `--threads` accepts.
    public static let maximumThreads = 256

    /// Largest `--max-message-bytes`.
    public static let maximumMessageLimit = 64 << 20
    /// Largest `--max-connections`.
    public static let maximumConnectionsLimit = 65_536

    public init(socketPath: String) {
        self.socketPath = socketPath
    }
}
