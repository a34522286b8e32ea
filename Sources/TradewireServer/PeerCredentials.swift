import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The peer of a Unix socket, from `SO_PEERCRED`.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    /// Layout of Linux's `struct ucred`.
    private struct UCred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Linux's `SO_PEERCRED` option number.
    private static let soPeerCred: Int32 = 17

    /// Reads the credentials of a connected Unix socket channel.
    static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(soPeerCred))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    /// The daemon's own uid and root are always allowed; then the configured uids and gids.
    func isAllowed(allowedUIDs: Set<UInt32>, allowedGIDs: Set<UInt32>) -> Bool {
        uid == 0 || uid == getuid() || allowedUIDs.contains(uid) || allowedGIDs.contains(gid)
    }
}
