#if canImport(Glibc)
    import Glibc
#endif

/// Where `--http ADDR:PORT` listens: an IPv4 address, a bracketed IPv6 address or a host
/// name, and a port (0: any free one). Only loopback addresses (127.0.0.0/8, `[::1]`,
/// `localhost`) unless remote hosts are allowed (`--http-allow-remote`).
public struct HTTPAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host as given, without brackets.
    public let host: String
    public let port: Int
    /// True for 127.0.0.0/8, ::1 and `localhost`.
    public let isLoopback: Bool

    /// Why an `--http` value was refused (a usage error: exit 2).
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `ADDR:PORT`. A non-loopback address is refused unless `allowRemote`.
    public static func parse(_ text: String, allowRemote: Bool) -> Result<HTTPAddress, ParseError> {
        func failure(_ why: String) -> Result<HTTPAddress, ParseError> {
            .failure(ParseError(description: "--http \(why), got \"\(text)\""))
        }
        let format = "must be ADDR:PORT (127.0.0.1:9464, [::1]:9464, localhost:0)"
        let host: String
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return failure(format)
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
            guard parseIPv6(host) != nil else { return failure("has no valid IPv6 address between the brackets") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return failure(format) }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return failure("needs an IPv6 address in brackets ([::1]:PORT)") }
            guard !host.isEmpty else { return failure(format) }
            guard parseIPv4(host) != nil || isHostName(host) else {
                return failure("has an address that is neither an IPv4 address nor a host name")
            }
        }
        guard !portText.isEmpty, portText.utf8.allSatisfy({ (48...57).contains($0) }), portText.count <= 5,
            let port = Int(portText), port <= 65_535
        else {
            return failure("needs a port in 0...65535 (0 picks a free one)")
        }
        let loopback = isLoopback(host)
        guard loopback || allowRemote else {
            return .failure(
                ParseError(
                    description:
                        "--http \(text) is not a loopback address (127.0.0.0/8, [::1], localhost); add --http-allow-remote to serve other hosts"
                ))
        }
        return .success(HTTPAddress(host: host, port: port, isLoopback: loopback))
    }

    static func isLoopback(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        if let v4 = parseIPv4(host) { return v4 >> 24 == 127 }
        if let v6 = parseIPv6(host) { return v6 == [UInt8](repeating: 0, count: 15) + [1] }
        return false
    }

    /// The address in host byte order, or nil when `text` is not dotted-quad IPv4.
    static func parseIPv4(_ text: String) -> UInt32? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return UInt32(bigEndian: address.s_addr)
    }

    /// The 16 bytes of an IPv6 address, or nil.
    static func parseIPv6(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// RFC 1123 host name: dot-separated labels of letters, digits and `-`, at most 253 bytes.
    static func isHostName(_ text: String) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { byte in
                    (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45
                }
        }
    }
}
