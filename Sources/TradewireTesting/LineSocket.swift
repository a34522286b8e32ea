import Foundation
import Synchronization
import TradewireJSON

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking Unix-socket connection that writes raw bytes and reads lines: the load
/// generator's transport, and the tests' way to send exactly the bytes they mean.
public final class LineSocket: @unchecked Sendable {
    // Used by one thread for writing and one for reading; the buffer belongs to the reader.
    public let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var start = 0
    private var end = 0

    /// Takes over an already-connected stream socket (closed with this object).
    public init(connected fd: Int32) {
        self.fd = fd
    }

    public init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    /// A TCP connection to `host:port` (an IPv4 address): the HTTP tests' transport.
    public init(host: String, port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw POSIXError(.EINVAL) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    /// Writes every byte, or stops at the first error (a closed peer is an error, never SIGPIPE).
    public func write(_ bytes: [UInt8]) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                offset += n
            }
        }
    }

    /// Reads one line (without the newline); nil at EOF.
    public func readLine() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                return line
            }
            if start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + end, raw.count - end) }
            if n <= 0 { return nil }
            end += n
        }
    }

    /// Reads exactly `count` bytes (after what is buffered); nil at EOF before that.
    public func readBytes(count: Int) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            if start < end {
                let take = min(count - bytes.count, end - start)
                bytes.append(contentsOf: buffer[start..<(start + take)])
                start += take
                continue
            }
            start = 0
            end = buffer.withUnsafeMutableBytes { raw in max(0, read(fd, raw.baseAddress!, raw.count)) }
            if end == 0 { return nil }
        }
        return bytes
    }

    /// Counts newlines until `count` lines were seen or EOF; returns the count. `progress`,
    /// when given, is kept up to date after every read.
    public func countLines(upTo count: Int, progress: LineCounter? = nil) -> Int {
        var seen = 0
        // Consume what is already buffered.
        while seen < count, let newline = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
            start = newline + 1
            seen += 1
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        while seen < count {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") { seen += 1 }
            progress?.value.store(seen, ordering: .releasing)
        }
        return seen
    }
}

/// A shared atomic counter (progress of ``LineSocket/countLines(upTo:progress:)``).
public final class LineCounter: Sendable {
    public let value = Atomic<Int>(0)
    public init() {}
}

extension LineSocket {
    /// Sets a receive timeout so a test never blocks forever on a silent daemon.
    public func setReadTimeout(seconds: Int) {
        setReadTimeout(milliseconds: seconds * 1000)
    }

    /// Sets a receive timeout in milliseconds (a read that times out returns nil).
    public func setReadTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one line and parses the next line received.
    public func roundTrip(_ line: String) -> JSONValue? {
        write(Array(line.utf8) + [10])
        return readLine().flatMap { try? JSONParser.parse($0) }
    }
}
