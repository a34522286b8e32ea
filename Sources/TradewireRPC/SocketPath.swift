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
}
