import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Logs the listener's accept failures (EMFILE and ENFILE above all: a client's connect then
/// waits in the backlog while NIO backs off), at most once a second, and passes them on.
final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel

    private let logger: Logger
    private let lastLogged = Mutex<ContinuousClock.Instant?>(nil)

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = ContinuousClock.now
        let due = lastLogged.withLock { last in
            guard last.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            last = now
            return true
        }
        if due {
            if let io = error as? IOError, io.errnoCode == EMFILE || io.errnoCode == ENFILE {
                logger.error(
                    "server.accept.fd_exhausted",
                    metadata: [
                        "errno": "\(io.errnoCode)", "error": "\(io)",
                        "hint": "raise the open-files limit or lower --max-connections",
                    ])
            } else {
                logger.warning("server.accept.failed", metadata: ["error": "\(error)"])
            }
        }
        context.fireErrorCaught(error)
    }
}
