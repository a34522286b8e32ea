import Foundation
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// `tradewired --http` as a process (PROTOCOL §12): the flag's usage errors, the plain
/// `http listening on` line, the read-only routes, Server-Sent Events and the drain.
@Suite(.serialized) struct HTTPProcessTests {
    /// The port of the one `http listening on 127.0.0.1:PORT` line (nil until it is printed).
    static func httpPort(_ daemon: DaemonProcess) -> Int? {
        let lines = daemon.stderr.split(separator: "\n").filter { $0.hasPrefix("http listening on ") }
        guard let line = lines.first, let colon = line.lastIndex(of: ":") else { return nil }
        return Int(line[line.index(after: colon)...])
    }

    /// Starts a daemon with `--http 127.0.0.1:0` and runs `body` with its HTTP port.
    func withHTTPDaemon(
        _ tag: String, arguments: [String] = [], _ body: (DaemonProcess, Int) async throws -> Void
    ) async throws {
        let path = uniqueSocketPath(tag)
        try await withDaemonProcess(path, arguments: ["--http", "127.0.0.1:0"] + arguments) { daemon in
            var port: Int?
            for _ in 0..<500 where port == nil {
                port = Self.httpPort(daemon)
                if port == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            try await body(daemon, try #require(port, "no http listening line: \(daemon.stderr)"))
        }
    }

    static let usageErrors: [(arguments: [String], message: String)] = [
        (["--http", "0.0.0.0:9464"], "add --http-allow-remote"),
        (["--http", "192.168.1.10:80"], "is not a loopback address"),
        (["--http", "[::]:80"], "add --http-allow-remote"),
        (["--http", "localhost"], "must be ADDR:PORT"),
        (["--http", "127.0.0.1:65536"], "needs a port in 0...65535"),
        (["--http", "127.0.0.1:-1"], "needs a port in 0...65535"),
        (["--http", "::1:80"], "needs an IPv6 address in brackets"),
        (["--http", "[::1:80"], "must be ADDR:PORT"),
        (["--http", "bad_host!:80"], "neither an IPv4 address nor a host name"),
        (["--http-allow-remote"], "--http-allow-remote needs --http ADDR:PORT"),
    ]

    @Test(arguments: usageErrors)
    func aBadHTTPFlagIsAUsageError(arguments: [String], message: String) async throws {
        let daemon = try DaemonProcess(socketPath: uniqueSocketPath("hu"), arguments: arguments)
        let status = await daemon.waitForExit(timeout: .seconds(20))
        await daemon.stop()
        #expect(status == 2, "\(arguments): \(daemon.stderr)")
        #expect(daemon.stderr.contains(message), "\(arguments): \(daemon.stderr)")
        #expect(!daemon.stderr.contains("listening on"))
    }

    @Test func itPrintsOnePlainListeningLineWhateverTheLogFormat() async throws {
        try await withHTTPDaemon("hl", arguments: ["--log-format", "json"]) { daemon, port in
            let lines = daemon.stderr.split(separator: "\n").filter { $0.contains("http listening on") }
            #expect(lines == ["http listening on 127.0.0.1:\(port)"], "\(daemon.stderr)")
            #expect(port > 0)
            let health = try HTTPConnection.fetch(port: port, "/healthz")
            #expect(health.status == 200 && health.body == "ok\n")
        }
    }

    @Test func itIsReadOnly() async throws {
        try await withHTTPDaemon("hr") { _, port in
            for (method, path) in [("POST", "/metrics"), ("PUT", "/"), ("DELETE", "/events"), ("POST", "/nowhere")] {
                let answer = try HTTPConnection.fetch(port: port, path, method: method)
                #expect(answer.status == 405, "\(method) \(path)")
                #expect(answer.headers["allow"] == "GET")
                #expect(answer.body.contains("read-only"))
            }
            let missing = try HTTPConnection.fetch(port: port, "/nowhere")
            #expect(missing.status == 404)
            let home = try HTTPConnection.fetch(port: port, "/")
            #expect(home.status == 200 && home.headers["content-type"]?.hasPrefix("text/html") == true)
            let metrics = try HTTPConnection.fetch(port: port, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(metrics.body.contains("# TYPE tradewire_publish_seconds histogram"))
            #expect(metrics.body.contains("# HELP tradewire_connections "))
        }
    }

    @Test func badEventStreamRequestsAre400WithAPlainMessage() async throws {
        try await withHTTPDaemon("hb") { _, port in
            let cases: [(String, [String: String], String)] = [
                ("/events?type=a%21b", [:], "type: pattern may only contain"),
                ("/events?type=", [:], "type: pattern must not be empty"),
                ("/events?since_seq=abc", [:], "since_seq must be an integer >= 0, got \"abc\""),
                ("/events?since_seq=-1", [:], "since_seq must be an integer >= 0"),
                ("/events?since_seq=999999", [:], "since_seq 999999 is ahead of the newest event"),
                ("/events?since_seq=0", ["Last-Event-ID": "x"], "Last-Event-ID must be an integer >= 0"),
            ]
            for (path, headers, message) in cases {
                let answer = try HTTPConnection.fetch(port: port, path, headers: headers)
                #expect(answer.status == 400, "\(path)")
                #expect(answer.headers["content-type"]?.hasPrefix("text/plain") == true)
                #expect(answer.body.contains(message), "\(path): \(answer.body)")
            }
        }
    }

    /// The raw `event` notifications a socket subscriber gets, as the event objects' bytes.
    private static func socketEvents(_ socket: LineSocket, count: Int) -> [String] {
        (0..<count).compactMap { _ in
            guard let line = socket.readLine() else { return nil }
            let text = String(decoding: line, as: UTF8.self)
            // {"jsonrpc":"2.0","method":"event","params":{"subscription":"s-N","event":EVENT}}
            guard let start = text.range(of: #""event":{"#) else { return nil }
            return String(text[text.index(before: start.upperBound)...].dropLast(2))
        }
    }

    @Test func eventsStreamAsServerSentEventsAndResumeAfterLastEventID() async throws {
        try await withHTTPDaemon("hs") { daemon, port in
            let subscriber = try LineSocket(path: daemon.socketPath)
            subscriber.setReadTimeout(seconds: 20)
            #expect(
                subscriber.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"sse.*"}}"#)
                    != nil)
            let publisher = ScriptedMember(socket: try LineSocket(path: daemon.socketPath)) { _ in .ignore }
            var seqs: [Int] = []
            for n in 0..<3 {
                let receipt = await publisher.request(
                    "publish", ["event_type": "sse.tick", "data": ["n": JSONValue(n)]])
                seqs.append(try #require(receipt?["result"]?["seq"]?.intValue))
            }
            _ = await publisher.request("publish", ["event_type": "other.tick", "data": [:]])
            let expected = Self.socketEvents(subscriber, count: 3)
            #expect(expected.count == 3)

            let stream = try HTTPConnection(port: port)
            let head = try #require(stream.request("GET", "/events?type=sse.*&since_seq=0"))
            #expect(head.status == 200)
            #expect(head.headers["content-type"] == "text/event-stream")
            #expect(head.headers["cache-control"] == "no-cache")
            #expect(stream.bodyLine() == "retry: 1000")
            #expect(stream.bodyLine() == "")
            for (seq, json) in zip(seqs, expected) {
                #expect(stream.bodyLine() == "id: \(seq)")
                #expect(stream.bodyLine() == "data: \(json)", "the same bytes as the socket's event")
                #expect(stream.bodyLine() == "")
            }
            // Live after the replay, with no gap.
            let live = await publisher.request("publish", ["event_type": "sse.tick", "data": ["n": 3]])
            let liveSeq = try #require(live?["result"]?["seq"]?.intValue)
            #expect(stream.bodyLine() == "id: \(liveSeq)")
            #expect(stream.bodyLine()?.hasPrefix("data: {\"seq\":\(liveSeq),\"event_type\":\"sse.tick\"") == true)

            // A reconnection: Last-Event-ID wins over since_seq.
            let again = try HTTPConnection(port: port)
            let resumed = try #require(
                again.request("GET", "/events?type=sse.*&since_seq=0", headers: ["Last-Event-ID": "\(seqs[1])"]))
            #expect(resumed.status == 200)
            #expect(again.bodyLine() == "retry: 1000")
            #expect(again.bodyLine() == "")
            #expect(again.bodyLine() == "id: \(seqs[2])")
            _ = again.bodyLine()
            _ = again.bodyLine()
            #expect(again.bodyLine() == "id: \(liveSeq)")
        }
    }

    @Test func aStreamEndsAtShutdownSayingWhy() async throws {
        try await withHTTPDaemon("hk") { daemon, port in
            let stream = try HTTPConnection(port: port)
            #expect(stream.request("GET", "/events?type=nothing.here")?.status == 200)
            #expect(stream.bodyLine() == "retry: 1000")
            #expect(stream.bodyLine() == "")
            // SIGTERM: the stream says why it closes, then the body ends.
            kill(daemon.process.processIdentifier, SIGTERM)
            #expect(stream.bodyLine() == ": closed: the daemon is shutting down")
            #expect(stream.bodyLine() == "")
            #expect(stream.bodyLine() == nil)
            #expect(await daemon.waitForExit() == 0)
        }
    }

    @Test func healthzIs503WhileTheDaemonDrains() async throws {
        try await withHTTPDaemon("hd") { daemon, port in
            #expect(try HTTPConnection.fetch(port: port, "/healthz").status == 200)
            // A strategy member that never answers holds an iteration (and so the drain)
            // until its call times out.
            let member = ScriptedMember(socket: try LineSocket(path: daemon.socketPath)) { _ in .ignore }
            _ = await member.request("register_stage", ["stage": "strategy", "name": "silent", "timeout_ms": 4000])
            let runner = try LineSocket(path: daemon.socketPath)
            runner.write(Array(#"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{}}"#.utf8) + [0x0A])
            var called = false
            for _ in 0..<200 where !called {
                called = !member.calls.isEmpty
                if !called { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(called)
            // A keep-alive connection opened before the stop stays usable through the drain.
            let probe = try HTTPConnection(port: port)
            #expect(probe.request("GET", "/healthz")?.status == 200)
            _ = probe.readBody()
            kill(daemon.process.processIdentifier, SIGTERM)
            var draining = false
            for _ in 0..<100 where !draining {
                let head = probe.request("GET", "/healthz")
                let body = probe.readBody()
                draining = head?.status == 503 && body == "draining\n"
                if !draining { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(draining, "healthz answers 503 while the socket server drains")
            #expect(await daemon.waitForExit() == 0)
        }
    }
}
