import NIOCore
import TradewireRPC

#if canImport(Glibc)
    import Glibc
#endif

extension PeerCredentials {
    /// Reads the credentials of a connected Unix socket channel.
    static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(optionName))
        return future.map { PeerCredentials($0) }
    }

    /// The daemon's own uid and root are always allowed; then the configured uids and gids.
    func isAllowed(allowedUIDs: Set<UInt32>, allowedGIDs: Set<UInt32>) -> Bool {
        isRootOrSelf || allowedUIDs.contains(uid) || allowedGIDs.contains(gid)
    }
}
