import TradewireBus

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The daemon's data directory, checked (and created) before anything is stored in it.
///
/// A missing directory is created with mode 0700, its missing parents too (like
/// `mkdir -p`). An existing one must be a real directory (not a symlink), owned by the
/// current user, and not writable by group or others; it is never chmodded.
///
/// Where it is (PROTOCOL §10) is one rule for the daemon and the CLI:
/// ``configured(explicit:environment:)`` and ``resolve(explicit:environment:)``.
public enum DataDirectory {
    /// `st_mode` file-type bits (the same on Linux and Darwin).
    private static let typeMask: UInt32 = 0o170000
    private static let directoryType: UInt32 = 0o040000
    private static let symlinkType: UInt32 = 0o120000
    /// Group- and other-write permission bits.
    private static let groupOrOtherWrite: UInt32 = 0o022

    /// `path` made absolute (against the working directory) without resolving symlinks,
    /// with trailing slashes removed, so `lstat` sees the last component itself.
    static func normalize(_ path: String) throws(JournalError) -> String {
        guard !path.isEmpty else { throw JournalError(.unusable, "data dir path is empty") }
        guard !path.utf8.contains(0) else {
            throw JournalError(.unusable, "data dir path contains a NUL byte")
        }
        var absolute = path
        if !absolute.hasPrefix("/") {
            guard let cwd = currentDirectory() else {
                throw JournalError(.unusable, "data dir \(path): cannot read the working directory: \(lastError())")
            }
            absolute = cwd.hasSuffix("/") ? cwd + absolute : cwd + "/" + absolute
        }
        while absolute.count > 1 && absolute.hasSuffix("/") { absolute.removeLast() }
        return absolute
    }

    /// Creates `path` (and missing parents, each 0700) if needed, then checks it.
    static func prepare(_ path: String) throws(JournalError) {
        try createMissing(path)
        try check(path)
    }

    /// `mkdir -p` with mode 0700 for every directory it creates.
    private static func createMissing(_ path: String) throws(JournalError) {
        var status = stat()
        if lstat(path, &status) == 0 { return }
        guard errno == ENOENT else {
            throw JournalError(.unusable, "data dir \(path): cannot inspect it: \(lastError())")
        }
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if stat(prefix, &status) == 0 {
                guard status.modeBits & typeMask == directoryType else {
                    throw JournalError(.unusable, "data dir \(path): \(prefix) exists and is not a directory")
                }
                continue
            }
            guard errno == ENOENT else {
                throw JournalError(.unusable, "data dir \(path): cannot inspect \(prefix): \(lastError())")
            }
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw JournalError(.unusable, "data dir \(path): cannot create \(prefix): \(lastError())")
            }
        }
    }

    /// The rules an existing data directory must meet.
    private static func check(_ path: String) throws(JournalError) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            throw JournalError(.unusable, "data dir \(path): cannot inspect it: \(lastError())")
        }
        let mode = status.modeBits
        switch mode & typeMask {
        case directoryType:
            break
        case symlinkType:
            throw JournalError(.unusable, "data dir \(path) is a symbolic link; give the real directory instead")
        default:
            throw JournalError(.unusable, "data dir \(path) exists and is not a directory")
        }
        let uid = geteuid()
        guard status.st_uid == uid else {
            throw JournalError(
                .unusable, "data dir \(path) is owned by uid \(status.st_uid), not by the current user (uid \(uid))")
        }
        guard mode & groupOrOtherWrite == 0 else {
            let octal = String(mode & 0o7777, radix: 8)
            throw JournalError(
                .unusable,
                "data dir \(path) is writable by group or others (mode 0\(octal)); "
                    + "make it private, e.g. chmod 700 \(path)")
        }
    }

    private static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension DataDirectory {
    /// The environment variable naming the data directory when `--data-dir` is not given.
    public static let environmentVariable = "TRADEWIRE_DATA_DIR"

    /// The directory named by `--data-dir` (`explicit`), else by `TRADEWIRE_DATA_DIR` when it
    /// is not empty; nil when neither names one.
    public static func configured(explicit: String?, environment: [String: String]) -> String? {
        if let explicit { return explicit }
        guard let named = environment[environmentVariable], !named.isEmpty else { return nil }
        return named
    }

    /// The default data directory: `$XDG_STATE_HOME/tradewire` (when that is an absolute
    /// path, as the XDG spec requires), else `$HOME/.local/state/tradewire`; nil without a
    /// usable `HOME` either.
    public static func standard(environment: [String: String]) -> String? {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return state.hasSuffix("/") ? state + "tradewire" : state + "/tradewire"
        }
        guard let home = environment["HOME"], home.hasPrefix("/") else { return nil }
        return (home.hasSuffix("/") ? home : home + "/") + ".local/state/tradewire"
    }

    /// The whole rule: `--data-dir`, else `TRADEWIRE_DATA_DIR`, else the default
    /// (``standard(environment:)``).
    public static func resolve(explicit: String?, environment: [String: String]) -> String? {
        configured(explicit: explicit, environment: environment) ?? standard(environment: environment)
    }
}

/// The data directory's exclusive lock: `DIR/lock`, held with `flock` for the journal's
/// life. The kernel drops it when the holder dies, so a killed daemon never blocks the next
/// start. The holder's pid is written into the file, for the message a second daemon shows.
enum DirectoryLock {
    /// Takes the lock on `directory` and returns the open lock file (closing it releases the
    /// lock), or fails with `.inUse` naming the holder's pid.
    static func acquire(directory: String) throws(JournalError) -> Int32 {
        let path = directory + "/lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw JournalError(.unusable, "data dir \(directory): cannot open \(path): \(lastError())")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = readPID(descriptor).map { String($0) } ?? "unknown"
            _ = close(descriptor)
            if code == EWOULDBLOCK || code == EAGAIN {
                throw JournalError(
                    .inUse,
                    "data dir \(directory) is in use by another tradewired (pid \(holder)); "
                        + "give each daemon its own --data-dir, or run with --ephemeral")
            }
            throw JournalError(.unusable, "data dir \(directory): cannot lock \(path): \(describe(code))")
        }
        // Best effort: the pid only improves a competitor's message.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 {
            _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        return descriptor
    }

    /// Releases a lock taken by ``acquire(directory:)``.
    static func release(_ descriptor: Int32) {
        _ = close(descriptor)
    }

    /// The pid a holder wrote into the lock file, if it has.
    private static func readPID(_ descriptor: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let digits = buffer[..<count].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}

extension stat {
    /// `st_mode` widened to one type on every platform.
    fileprivate var modeBits: UInt32 { UInt32(st_mode) }
}

/// The current `errno`, described.
func lastError() -> String { describe(errno) }

/// An `errno` value, described (`strerror` text and the number).
func describe(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: text)) (errno \(code))"
}
