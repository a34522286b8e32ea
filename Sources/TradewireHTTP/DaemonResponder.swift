import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TradewireBus
import TradewireServer

/// Answers every HTTP request (PROTOCOL §12). Read-only: `GET` only (anything else is 405
/// on every path), and nothing it calls changes the daemon's state.
///
/// - `/metrics`: the Prometheus text format.
/// - `/healthz`: 200 `ok` while serving, 503 `draining` once a graceful stop began.
/// - `/events?type=PATTERN&since_seq=N`: Server-Sent Events (`Last-Event-ID` wins over
///   `since_seq`).
/// - `/`: the dashboard page; `/api/…`: its read-only JSON (``DashboardAPI``).
struct DaemonResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let daemon: Daemon
    let configuration: HTTPConfiguration
    let collector: MetricsCollector
    let streams: EventStreams
    let api: DashboardAPI
    let logger: Logger

    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .get else {
            return Self.text(
                .methodNotAllowed, "\(request.method) is not allowed: this server is read-only (GET only)\n",
                headers: [.allow: "GET"])
        }
        switch request.uri.path {
        case "/metrics":
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: await collector.scrape())))
        case "/healthz":
            // The socket server drains first; this server's own stop comes after it.
            let draining = daemon.connections.isDraining || streams.isClosed
            return draining ? Self.text(.serviceUnavailable, "draining\n") : Self.text(.ok, "ok\n")
        case "/events":
            return await events(request)
        case "/":
            return DashboardPage.response()
        case let path where path.hasPrefix("/api/"):
            return await api.respond(to: request)
        default:
            return Self.text(
                .notFound, "no such page: \(request.uri.path) (try /, /api/status, /metrics, /healthz, /events)\n")
        }
    }

    /// A plain-text answer.
    static func text(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: message)))
    }

    // MARK: /events

    /// Opens a stream: validates the request, subscribes with the same replay as the
    /// socket's `subscribe since_seq` (journal, then history, then live), and answers with a
    /// body that writes the stream until it ends or its client goes.
    private func events(_ request: Request) async -> Response {
        let query = request.uri.queryParameters
        let pattern: EventPattern
        do {
            pattern = try EventPattern(query["type"].map(String.init) ?? "*")
        } catch {
            return Self.text(.badRequest, "type: \(error.description)\n")
        }
        let since: Int?
        switch sinceSeq(request) {
        case .success(let value): since = value
        case .failure(let problem): return Self.text(.badRequest, problem.message + "\n")
        }
        guard let (id, stream) = streams.open(budget: configuration.streamBudgetBytes) else {
            var headers = HTTPFields()
            headers[.retryAfter] = "5"
            return Self.text(
                .serviceUnavailable,
                "\(streams.maximum) event streams are open (or the daemon is stopping); try again later\n",
                headers: headers)
        }
        let bus = daemon.bus
        let streams = self.streams
        // Negative ids: a stream counts as a client subscriber, apart from socket connections.
        let subscription = await daemon.subscribe(
            pattern, owner: .client(connection: -id), replayingAfter: since, deliver: { stream.enqueue($0) },
            onGap: { _, gap in stream.gap(gap) }
        ).id
        let logger = self.logger
        logger.debug(
            "http.events.opened",
            metadata: ["http.stream": "\(id)", "pattern": "\(pattern)", "since_seq": "\(since.map(String.init) ?? "")"])
        let lease = StreamLease {
            bus.unsubscribe(subscription)
            streams.remove(id)
        }
        let keepAlive = configuration.keepAliveInterval
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer { lease.release() }
                let end = try await Self.write(stream, to: &writer, keepAlive: keepAlive)
                logger.debug("http.events.closed", metadata: ["http.stream": "\(id)", "reason": "\(end)"])
                try await writer.finish(nil)
            })
    }

    /// Writes the stream's frames until it ends; returns why it ended.
    private static func write(_ stream: EventStream, to writer: inout any ResponseBodyWriter, keepAlive: Duration)
        async throws -> EventStream.End
    {
        try await writer.write(ByteBuffer(bytes: ServerSentEvents.opening))
        while true {
            var bytes: [UInt8] = []
            switch await stream.take(waitingUpTo: keepAlive) {
            case .idle:
                try await writer.write(ByteBuffer(bytes: ServerSentEvents.keepAlive))
            case .items(let items):
                ServerSentEvents.append(items, to: &bytes)
                try await writer.write(ByteBuffer(bytes: bytes))
            case .end(let items, let end):
                ServerSentEvents.append(items, to: &bytes)
                bytes.append(contentsOf: ServerSentEvents.closing(end, budget: stream.budget))
                try await writer.write(ByteBuffer(bytes: bytes))
                return end
            }
        }
    }

    private struct BadRequest: Error {
        let message: String
    }

    /// `Last-Event-ID` (when present and not empty), else `since_seq`: a seq from 0 to the
    /// newest issued.
    private func sinceSeq(_ request: Request) -> Result<Int?, BadRequest> {
        let name: String
        let text: String
        if let header = request.headers[Self.lastEventID], !header.isEmpty {
            (name, text) = ("Last-Event-ID", header)
        } else if let query = request.uri.queryParameters["since_seq"] {
            (name, text) = ("since_seq", String(query))
        } else {
            return .success(nil)
        }
        guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int(text) else {
            return .failure(BadRequest(message: "\(name) must be an integer >= 0, got \"\(text)\""))
        }
        let newest = daemon.bus.lastSeq
        guard value <= newest else {
            return .failure(BadRequest(message: "\(name) \(value) is ahead of the newest event (\(newest))"))
        }
        return .success(value)
    }
}

/// Ends a stream's subscription and frees its slot exactly once: when its body finished
/// writing, or when the response is dropped without its body ever running.
final class StreamLease: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = Mutex(action)
    }

    func release() {
        action.withLock { action in
            defer { action = nil }
            return action
        }?()
    }

    deinit { release() }
}
