import Foundation
import TradewireRPC

#if canImport(Glibc)
    import Glibc
#endif

/// Why the daemon cannot take its socket path.
public enum SocketFileError: Error, CustomStringConvertible, Sendable {
    /// A daemon already answers on the path (exit 2).
    case anotherDaemon(String)
    /// Something that is not a socket is at the path (exit 2).
    case notASocket(String)
    case pathTooLong(String)
    /// The socket's directory does not exist (exit 2).
    case missingDirectory(String)
    case cannotPrepare(String, String)

    public var description: String {
        switch self {
        case .anotherDaemon(let path):
            "another tradewired is already listening on \(path) (stop it with `tradewire shutdown --socket \(path)`, or choose another --socket)"
        case .notASocket(let path): "\(path) exists and is not a socket; refusing to replace it"
        case .pathTooLong(let path): "socket path is longer than \(107) bytes: \(path)"
        case .missingDirectory(let directory):
            "the socket's directory \(directory) does not exist; create it or choose another --socket"
        case .cannotPrepare(let path, let reason): "cannot prepare \(path): \(reason)"
        }
    }
}

/// The socket file's life: stale-file takeover before bind, removal at exit. (Its mode comes
/// from the umask at bind time; nothing here changes a path's permissions.)
enum SocketFile {
    /// Makes `path` bindable: creates the default directory (0700) if needed, refuses when a
    /// daemon answers or a non-socket is there, removes a stale socket.
    static func prepare(_ path: String, defaultDirectory: String) throws(SocketFileError) {
        guard path.utf8.count <= 107 else { throw .pathTooLong(path) }
        let directory = (path as NSString).deletingLastPathComponent
        if directory == defaultDirectory {
            // Exactly 0700 through the umask (never a chmod of a path in a shared directory).
            let previous = umask(0o077)
            let made = mkdir(directory, 0o700)
            let mkdirErrno = errno
            umask(previous)
            if made != 0 && mkdirErrno != EEXIST {
                throw .cannotPrepare(directory, String(cString: strerror(mkdirErrno)))
            }
            // /tmp is shared: only use the directory if it is ours and closed to others.
            if let problem = SocketPath.privateDirectoryProblem(directory) {
                throw .cannotPrepare(directory, problem.description)
            }
        } else {
            var directoryInfo = stat()
            guard stat(directory.isEmpty ? "." : directory, &directoryInfo) == 0 else {
                throw .missingDirectory(directory)
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw .notASocket(path) }
        if canConnect(path) { throw .anotherDaemon(path) }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .cannotPrepare(path, String(cString: strerror(errno)))
        }
    }

    /// True when something accepts connections on the socket path.
    static func canConnect(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    static func remove(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }
}
