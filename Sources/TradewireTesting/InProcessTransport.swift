import Foundation
import NIOCore
import NIOPosix
import TradewireServer

#if canImport(Glibc)
    import Glibc
#endif

/// Connects a test to a daemon without its socket path or listener: the two ends of a
/// `socketpair`, one served by the daemon's connection handler, the other returned.
///
/// The same test body can then run over the real socket and in process (as Hummingbird's
/// testing module offers a router-level and a live client).
public enum InProcessTransport {
    public struct Failure: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { "socketpair failed: \(String(cString: strerror(errno)))" }
    }

    /// A new connection to `daemon`.
    public static func connect(
        to daemon: Daemon, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> LineSocket {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw Failure(errno: errno)
        }
        do {
            try await daemon.serve(connectedSocket: fds[0], on: group)
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        return LineSocket(connected: fds[1])
    }
}
