#if canImport(Glibc)
    import Glibc
#endif

/// The peer of a Unix socket, from `SO_PEERCRED` (both ends check it: the daemon admits
/// only allowed users, a client talks only to a daemon of its own user or root).
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Layout of Linux's `struct ucred`, as `getsockopt(SO_PEERCRED)` fills it.
    public struct UCred: Sendable {
        public var pid: Int32 = 0
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public init() {}
    }

    public init(_ ucred: UCred) { self.init(pid: ucred.pid, uid: ucred.uid, gid: ucred.gid) }

    /// Linux's `SO_PEERCRED` option number (level `SOL_SOCKET`).
    public static let optionName: Int32 = 17

    /// True for root and for this process's own user.
    public var isRootOrSelf: Bool { uid == 0 || uid == getuid() }
}
