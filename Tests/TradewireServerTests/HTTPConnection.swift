import Foundation
import TradewireTesting

/// A blocking HTTP/1.1 client for the live tests: it sends exactly the request asked for,
/// then reads the head and the body as it arrives (by length, chunked, or to the close),
/// line by line for Server-Sent Events.
final class HTTPConnection {
    struct Head {
        let status: Int
        /// Header names in lower case.
        let headers: [String: String]
    }

    private let socket: LineSocket
    private var body: [UInt8] = []
    private var chunked = false
    private var remaining: Int?
    private var ended = false

    init(port: Int, readTimeout: Int = 20) throws {
        socket = try LineSocket(host: "127.0.0.1", port: port)
        socket.setReadTimeout(seconds: readTimeout)
    }

    /// Sends a request and reads its head (nil when the server closed first).
    func request(_ method: String, _ path: String, headers: [String: String] = [:]) -> Head? {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if method != "GET" { text += "Content-Length: 0\r\n" }
        socket.write(Array((text + "\r\n").utf8))
        guard let statusLine = socket.readLine().map(Self.text) else { return nil }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var fields: [String: String] = [:]
        while let line = socket.readLine().map(Self.text), !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        chunked = fields["transfer-encoding"]?.lowercased() == "chunked"
        remaining = fields["content-length"].flatMap { Int($0) }
        ended = !chunked && remaining == 0
        body = []
        return Head(status: status, headers: fields)
    }

    /// The next line of the body, without its newline; nil once the body ended.
    func bodyLine() -> String? {
        while true {
            if let newline = body.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Self.text(body[..<newline][...])
                body.removeFirst(newline + 1)
                return line
            }
            guard fill() else {
                guard !body.isEmpty else { return nil }
                defer { body = [] }
                return Self.text(body[...])
            }
        }
    }

    /// The rest of the body.
    func readBody() -> String {
        while fill() {}
        defer { body = [] }
        return String(decoding: body, as: UTF8.self)
    }

    /// Reads more of the body into `body`; false once it ended.
    private func fill() -> Bool {
        guard !ended else { return false }
        if chunked {
            guard let sizeLine = socket.readLine().map(Self.text),
                let size = Int(sizeLine.split(separator: ";")[0], radix: 16)
            else {
                ended = true
                return false
            }
            if size == 0 {
                _ = socket.readLine()
                ended = true
                return false
            }
            guard let chunk = socket.readBytes(count: size) else {
                ended = true
                return false
            }
            _ = socket.readLine()
            body += chunk
            return true
        }
        let want = min(remaining ?? 4096, 4096)
        guard want > 0, let bytes = socket.readBytes(count: remaining == nil ? 1 : want) else {
            ended = true
            return false
        }
        body += bytes
        if let left = remaining {
            remaining = left - bytes.count
            if remaining == 0 { ended = true }
        }
        return true
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        var line = String(decoding: bytes, as: UTF8.self)
        if line.hasSuffix("\r") { line.removeLast() }
        return line
    }

    /// One request on a new connection: its status, headers and whole body.
    static func fetch(port: Int, _ path: String, method: String = "GET", headers: [String: String] = [:]) throws
        -> (status: Int, headers: [String: String], body: String)
    {
        let connection = try HTTPConnection(port: port)
        guard
            let head = connection.request(method, path, headers: headers.merging(["Connection": "close"]) { a, _ in a })
        else { throw DaemonError("no answer to \(method) \(path)") }
        return (head.status, head.headers, connection.readBody())
    }
}
