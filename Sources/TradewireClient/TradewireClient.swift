import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TradewireJSON
import TradewireRPC

/// Why a client call failed.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// The socket could not be reached.
    case cannotConnect(path: String, reason: String)
    /// The daemon answered with a JSON-RPC error.
    case rpc(RPCError)
    /// The connection closed before the answer arrived.
    case connectionClosed
    /// No answer within the timeout.
    case timeout(method: String)
    /// The daemon sent something that is not valid JSON-RPC.
    case protocolViolation(String)
    /// The socket or its directory cannot be trusted (another user could have made it),
    /// or the process answering is not this user's or root's. Nothing was sent.
    case untrusted(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotConnect(let path, let reason):
            "cannot connect to tradewired at \(path): \(reason). Start it with `make run` or `tradewired --socket \(path)`."
        case .rpc(let error): error.message
        case .connectionClosed: "the daemon closed the connection"
        case .timeout(let method): "no answer to \(method) in time"
        case .protocolViolation(let what): "protocol violation: \(what)"
        case .untrusted(let path, let reason): "not connecting to \(path): \(reason)"
        }
    }
}

/// A server notification (`event`, `events_dropped`, `shutdown`, `$/cancelRequest`).
public struct ServerNotification: Sendable {
    public let method: String
    public let params: JSONValue
}

/// A request the daemon sent to this client: a message with both `method` and `id`
/// (PROTOCOL §9, `stage.handle`). Answer it once with ``TradewireClient/reply(to:result:)``
/// or ``TradewireClient/reply(to:error:)``; the daemon may cancel it first with the
/// notification `$/cancelRequest {"id"}`, which arrives on ``TradewireClient/notifications``.
public struct IncomingRequest: Sendable {
    /// The request's id, echoed exactly in the reply (the daemon's ids are strings `c-…`).
    public let id: JSONValue
    public let method: String
    /// The by-name params (`null` when the request had none).
    public let params: JSONValue

    public init(id: JSONValue, method: String, params: JSONValue) {
        self.id = id
        self.method = method
        self.params = params
    }
}

/// An async JSON-RPC client for tradewired over its Unix socket.
///
/// Requests may be issued concurrently; responses are matched by id. Notifications arrive
/// on ``notifications``, requests the daemon sends to this client (a stage member's calls)
/// on ``requests``.
public final class TradewireClient: Sendable {
    public let socketPath: String
    private let channel: any Channel
    private let state: Mutex<State>
    private let group: MultiThreadedEventLoopGroup?
    /// The timeout of a call that names none.
    public let defaultTimeout: Duration
    /// Server notifications, in arrival order; finishes when the connection closes.
    public let notifications: AsyncStream<ServerNotification>
    /// Requests from the daemon, in arrival order; finishes when the connection closes.
    /// Buffered without bound: a client that never registers a stage never gets one.
    public let requests: AsyncStream<IncomingRequest>

    private struct State {
        var nextID = 1
        var pending: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
        var closed = false
    }

    /// Connects to `socketPath` (default: the socket path rules).
    ///
    /// Before anything is sent: a socket in the default directory (`/tmp/tradewire-$UID`)
    /// requires that directory to be this user's, mode 0700 and not a symlink; and whatever
    /// the path, the process listening must run as this user or root (`SO_PEERCRED`).
    ///
    /// - Parameters:
    ///   - maxMessageBytes: the longest reply accepted; a longer one fails its call.
    ///   - defaultTimeout: how long a call that names no timeout waits for its answer.
    public static func connect(
        socketPath: String? = nil, maxMessageBytes: Int = 64 << 20, defaultTimeout: Duration = .seconds(60),
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) async throws(ClientError) -> TradewireClient {
        let path = SocketPath.resolve(explicit: socketPath, environment: ProcessInfo.processInfo.environment)
        try checkDirectory(of: path)
        let owned = eventLoopGroup == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let group = eventLoopGroup ?? owned!
        let (stream, continuation) = AsyncStream<ServerNotification>.makeStream(bufferingPolicy: .unbounded)
        let (requestStream, requestContinuation) = AsyncStream<IncomingRequest>.makeStream(
            bufferingPolicy: .unbounded)
        let box = ClientBox()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ClientHandler(
                                maxMessageBytes: maxMessageBytes, box: box, notifications: continuation,
                                requests: requestContinuation))
                    }
                }
                .connect(unixDomainSocketPath: path).get()
        } catch {
            try? await owned?.shutdownGracefully()
            throw .cannotConnect(path: path, reason: String(describing: error))
        }
        do {
            let peer = try await peerCredentials(of: channel)
            guard peer.isRootOrSelf else {
                throw ClientError.untrusted(
                    path: path, reason: "the process listening runs as uid \(peer.uid), not \(getuid()) or root")
            }
        } catch {
            try? await channel.close()
            try? await owned?.shutdownGracefully()
            if let error = error as? ClientError { throw error }
            throw .untrusted(path: path, reason: "cannot read the server's credentials: \(error)")
        }
        let client = TradewireClient(
            path: path, channel: channel, group: owned, defaultTimeout: defaultTimeout, notifications: stream,
            requests: requestStream)
        box.client.withLock { $0 = client }
        return client
    }

    /// The default directory must be private; any other directory must at least exist.
    private static func checkDirectory(of path: String) throws(ClientError) {
        let directory = SocketPath.directory(of: path)
        if directory == SocketPath.fallbackDirectory {
            switch SocketPath.privateDirectoryProblem(directory) {
            case nil: return
            case .missing(let missing)?:
                throw .cannotConnect(path: path, reason: SocketPath.DirectoryProblem.missing(missing).description)
            case let problem?:
                throw .untrusted(path: path, reason: problem.description)
            }
        }
        var info = stat()
        if stat(directory, &info) != 0 {
            throw .cannotConnect(path: path, reason: SocketPath.DirectoryProblem.missing(directory).description)
        }
    }

    private static func peerCredentials(of channel: any Channel) async throws -> PeerCredentials {
        guard let provider = channel as? any SocketOptionProvider else { throw ChannelError.operationUnsupported }
        let ucred: PeerCredentials.UCred = try await provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(PeerCredentials.optionName)
        ).get()
        return PeerCredentials(ucred)
    }

    private init(
        path: String, channel: any Channel, group: MultiThreadedEventLoopGroup?, defaultTimeout: Duration,
        notifications: AsyncStream<ServerNotification>, requests: AsyncStream<IncomingRequest>
    ) {
        self.socketPath = path
        self.channel = channel
        self.group = group
        self.defaultTimeout = defaultTimeout
        self.notifications = notifications
        self.requests = requests
        self.state = Mutex(State())
    }

    /// Calls a method with by-name params and returns its `result` (within `timeout`, else
    /// ``defaultTimeout``).
    public func call(_ method: String, _ params: JSONObject = [:], timeout: Duration? = nil) async throws(ClientError)
        -> JSONValue
    {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("method", method)
        writer.field("params", params)
        writer.endObject()
        return try await send(raw: writer.bytes, id: id, method: method, timeout: timeout)
    }

    /// Sends a raw line (tests use this to send hostile input) and awaits the answer with `id`.
    public func send(raw: [UInt8], id: Int, method: String = "raw", timeout: Duration? = nil) async throws(ClientError)
        -> JSONValue
    {
        let limit = timeout ?? defaultTimeout
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            self?.fail(id: id, with: ClientError.timeout(method: method))
        }
        defer { timer.cancel() }
        do {
            return try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<JSONValue, any Error>) in
                let closed = state.withLock { s in
                    if s.closed { return true }
                    s.pending[id] = continuation
                    return false
                }
                if closed {
                    continuation.resume(throwing: ClientError.connectionClosed)
                    return
                }
                var buffer = channel.allocator.buffer(capacity: raw.count + 1)
                buffer.writeBytes(raw)
                buffer.writeInteger(UInt8(ascii: "\n"))
                channel.writeAndFlush(buffer, promise: nil)
            }
        } catch let error as ClientError {
            throw error
        } catch {
            throw .protocolViolation(String(describing: error))
        }
    }

    /// Answers a request from ``requests`` with `result`. Nothing comes back (a reply to a
    /// reply does not exist); on a closed connection the line is dropped.
    public func reply(to id: JSONValue, result: JSONValue) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("result", result)
        writer.endObject()
        sendRaw(writer.bytes)
    }

    /// Answers a request from ``requests`` with an error object (`{"code", "message",
    /// "data": {"type", ...}}`).
    public func reply(to id: JSONValue, error: RPCError) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("error", error.json)
        writer.endObject()
        sendRaw(writer.bytes)
    }

    /// Writes a raw line without waiting for anything.
    public func sendRaw(_ line: [UInt8]) {
        var buffer = channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        channel.writeAndFlush(buffer, promise: nil)
    }

    fileprivate func fail(id: Int, with error: any Error) {
        let continuation = state.withLock { $0.pending.removeValue(forKey: id) }
        continuation?.resume(throwing: error)
    }

    /// A reply that cannot be read: it fails its own call when its id can be found, else
    /// every pending call (one of them will never get its answer).
    fileprivate func failUnreadable(id: Int?, reason: String) {
        if let id {
            fail(id: id, with: ClientError.protocolViolation(reason))
            return
        }
        let pending = state.withLock { s in
            defer { s.pending = [:] }
            return s.pending
        }
        for continuation in pending.values { continuation.resume(throwing: ClientError.protocolViolation(reason)) }
    }

    fileprivate func deliver(_ message: JSONValue) {
        guard let id = message["id"]?.intValue else { return }
        let continuation = state.withLock { $0.pending.removeValue(forKey: id) }
        guard let continuation else { return }
        if let error = message["error"] {
            let code = error["code"]?.intValue ?? 0
            let text = error["message"]?.stringValue ?? "error"
            let type = error["data"]?["type"]?.stringValue ?? ""
            var details = error["data"]?.objectValue ?? [:]
            details["type"] = nil
            continuation.resume(
                throwing: ClientError.rpc(RPCError(code: code, message: text, type: type, details: details)))
        } else {
            continuation.resume(returning: message["result"] ?? .null)
        }
    }

    fileprivate func closed() {
        let pending = state.withLock { s in
            s.closed = true
            defer { s.pending = [:] }
            return s.pending
        }
        for continuation in pending.values { continuation.resume(throwing: ClientError.connectionClosed) }
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
        try? await group?.shutdownGracefully()
    }

    // MARK: convenience

    public func ping() async throws(ClientError) -> Bool { try await call("ping")["pong"]?.boolValue == true }

    /// Subscribes and returns the subscription id; events arrive on ``notifications``.
    public func subscribe(_ pattern: String, sinceSeq: Int? = nil) async throws(ClientError) -> String {
        var params: JSONObject = ["event_type": JSONValue(pattern)]
        if let sinceSeq { params["since_seq"] = JSONValue(sinceSeq) }
        let result = try await call("subscribe", params)
        guard let id = result["subscription"]?.stringValue else {
            throw .protocolViolation("subscribe result has no id")
        }
        return id
    }

    @discardableResult
    public func publish(_ type: String, data: JSONValue = .null, metadata: JSONObject = [:]) async throws(ClientError)
        -> JSONValue
    {
        var params: JSONObject = ["event_type": JSONValue(type), "data": data]
        if !metadata.isEmpty { params["metadata"] = .object(metadata) }
        return try await call("publish", params)
    }
}

/// Lets the channel handler reach the client once it exists.
final class ClientBox: Sendable {
    let client = Mutex<TradewireClient?>(nil)
}

/// Frames lines and routes responses and notifications.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var framer: LineFramer
    private let box: ClientBox
    private let notifications: AsyncStream<ServerNotification>.Continuation
    private let requests: AsyncStream<IncomingRequest>.Continuation

    init(
        maxMessageBytes: Int, box: ClientBox, notifications: AsyncStream<ServerNotification>.Continuation,
        requests: AsyncStream<IncomingRequest>.Continuation
    ) {
        self.framer = LineFramer(maximumLineBytes: maxMessageBytes)
        self.box = box
        self.notifications = notifications
        self.requests = requests
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var frames: [LineFramer.Frame] = []
        buffer.withUnsafeReadableBytes { bytes in framer.feed(bytes) { frames.append($0) } }
        let client = box.client.withLock { $0 }
        for frame in frames {
            guard case .line(let line) = frame else {
                client?.failUnreadable(id: nil, reason: "a reply was longer than \(framer.maximumLineBytes) bytes")
                continue
            }
            let message: JSONValue
            do { message = try JSONParser.parse(line) } catch {
                // A notification nobody waits for is skipped; a reply fails its call (or all).
                guard !ReplyScanner.isNotification(line) else { continue }
                client?.failUnreadable(id: ReplyScanner.integerID(line), reason: "unreadable reply: \(error)")
                continue
            }
            if case .array(let responses) = message {
                for response in responses { route(response, client: client) }
            } else {
                route(message, client: client)
            }
        }
    }

    /// A message with `method` is a notification (no `id`) or a request from the daemon
    /// (with one); anything else is a response.
    private func route(_ message: JSONValue, client: TradewireClient?) {
        if let method = message["method"]?.stringValue {
            let params = message["params"] ?? .null
            if let id = message["id"] {
                requests.yield(IncomingRequest(id: id, method: method, params: params))
            } else {
                notifications.yield(ServerNotification(method: method, params: params))
            }
        } else {
            client?.deliver(message)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        notifications.finish()
        requests.finish()
        box.client.withLock { $0 }?.closed()
        context.fireChannelInactive()
    }
}
