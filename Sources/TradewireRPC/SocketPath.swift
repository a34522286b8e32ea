#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The socket path rules every tradewire program shares (PROTOCOL §1): `--socket PATH`,
/// then `TRADEWIRE_SOCKET`, then `$XDG_RUNTIME_DIR/tradewire.sock`, then
/// `/tmp/tradewire-$UID/tradewire.sock`.
public enum SocketPath {
    /// The first match of the rules.
    public static func resolve(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnv = environment["TRADEWIRE_SOCKET"], !fromEnv.isEmpty { return fromEnv }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return runtime.hasSuffix("/") ? runtime + "tradewire.sock" : runtime + "/tradewire.sock"
        }
        return fallbackDirectory + "/tradewire.sock"
    }

    /// `/tmp/tradewire-$UID`, which the daemon creates with mode 0700.
    public static var fallbackDirectory: String { "/tmp/tradewire-\(getuid())" }

    /// Longest path a Unix socket address holds (sun_path less its terminator).
    public static let maximumLength = 107

    /// Why a socket directory cannot be trusted.
    public enum DirectoryProblem: Sendable, Equatable, CustomStringConvertible {
        case missing(String)
        case notADirectory(String)
        case symlink(String)
        case wrongOwner(String, uid: UInt32)
        case wrongMode(String, mode: UInt32)

        public var description: String {
            switch self {
            case .missing(let path): "the socket directory \(path) does not exist (is tradewired running?)"
            case .notADirectory(let path): "refusing \(path): not a directory"
            case .symlink(let path): "refusing \(path): it is a symbolic link"
            case .wrongOwner(let path, let uid): "refusing \(path): owned by uid \(uid), not \(getuid())"
            case .wrongMode(let path, let mode): "refusing \(path): mode 0\(String(mode, radix: 8)), expected 0700"
            }
        }
    }

    /// Checks that a directory in a shared place (the default `/tmp/tradewire-$UID`) is a real
    /// directory (not a symlink), owned by this user, with mode exactly 0700. Every program
    /// checks it before using a socket in it: another user could have made it first.
    public static func privateDirectoryProblem(_ directory: String) -> DirectoryProblem? {
        var info = stat()
        guard lstat(directory, &info) == 0 else { return .missing(directory) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: break
        case S_IFLNK: return .symlink(directory)
        default: return .notADirectory(directory)
        }
        guard info.st_uid == getuid() else { return .wrongOwner(directory, uid: info.st_uid) }
        guard info.st_mode & 0o777 == 0o700 else { return .wrongMode(directory, mode: UInt32(info.st_mode & 0o777)) }
        return nil
    }

    /// The directory part of a socket path (`.` for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }
}
