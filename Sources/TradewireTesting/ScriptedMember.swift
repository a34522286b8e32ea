import Foundation
import Synchronization
import TradewireJSON

/// A stage member whose answers a test scripts: it registers, then serves `stage.handle`
/// calls on its own thread, records calls and `$/cancelRequest`s, and can make requests of
/// its own while calls are in flight.
public final class ScriptedMember: Sendable {
    /// What to do with one call.
    public enum Action: Sendable {
        /// Reply with this result.
        case reply(JSONValue)
        /// Reply with a JSON-RPC error.
        case error(String)
        /// Never reply.
        case ignore
        /// Reply after a delay (a late reply when the deadline passed meanwhile).
        case replyLater(seconds: Double, JSONValue)
        /// Close the connection without replying.
        case disconnect
        /// Write these bytes (a newline is added).
        case raw([UInt8])
    }

    private struct State {
        var calls: [JSONValue] = []
        var cancels: [String] = []
        var responses: [String: JSONValue] = [:]
        var nextID = 1
        var closed = false
    }

    public let socket: LineSocket
    private let state = Mutex(State())
    private let writeLock = NSLock()
    private let arrived = NSCondition()
    private let answer: @Sendable (JSONValue) -> Action

    /// - Parameter answer: decides each call from its `params`.
    public init(socket: LineSocket, answer: @escaping @Sendable (JSONValue) -> Action) {
        self.socket = socket
        self.answer = answer
        socket.setReadTimeout(seconds: 600)
        Thread.detachNewThread { [self] in readLoop() }
    }

    /// `stage.handle` params received, in order.
    public var calls: [JSONValue] { state.withLock { $0.calls } }
    /// Ids named by `$/cancelRequest`, in order.
    public var cancels: [String] { state.withLock { $0.cancels } }
    /// True once the connection closed (either side).
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Sends a request and waits (at most `timeout` seconds) for its response.
    public func call(_ method: String, _ params: JSONValue = [:], timeout: Double = 30) -> JSONValue? {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return "m-\(s.nextID)"
        }
        write(["jsonrpc": "2.0", "id": JSONValue(id), "method": JSONValue(method), "params": params])
        let limit = Date().addingTimeInterval(timeout)
        arrived.lock()
        defer { arrived.unlock() }
        while true {
            if let response = state.withLock({ $0.responses.removeValue(forKey: id) }) { return response }
            if state.withLock({ $0.closed }) || !arrived.wait(until: limit) { return nil }
        }
    }

    /// Waits until `count` cancels arrived (or `timeout` seconds passed).
    @discardableResult
    public func waitForCancels(_ count: Int, timeout: Double = 30) -> Bool {
        let limit = Date().addingTimeInterval(timeout)
        arrived.lock()
        defer { arrived.unlock() }
        while cancels.count < count {
            if !arrived.wait(until: limit) { return false }
        }
        return true
    }

    /// Closes the connection (the daemon sees the member leave).
    public func close() {
        state.withLock { $0.closed = true }
        shutdown(socket.fd, Int32(SHUT_RDWR))
    }

    public func write(_ message: JSONValue) { writeLine(JSONWriter.encode(message)) }

    private func writeLine(_ bytes: [UInt8]) {
        writeLock.lock()
        defer { writeLock.unlock() }
        socket.write(bytes + [10])
    }

    private func signal(_ body: () -> Void) {
        arrived.lock()
        body()
        arrived.broadcast()
        arrived.unlock()
    }

    private func readLoop() {
        while !state.withLock({ $0.closed }), let line = socket.readLine() {
            guard let message = try? JSONParser.parse(line) else { continue }
            if message["method"] == "stage.handle", let id = message["id"] {
                let params = message["params"] ?? .null
                signal { state.withLock { $0.calls.append(params) } }
                // Answered on its own thread, so that the answer may itself make requests.
                Thread.detachNewThread { [self] in perform(answer(params), id: id) }
            } else if message["method"] == "$/cancelRequest", let id = message["params"]?["id"]?.stringValue {
                signal { state.withLock { $0.cancels.append(id) } }
            } else if message["method"] == nil, let id = message["id"]?.stringValue {
                signal { state.withLock { $0.responses[id] = message } }
            }
        }
        signal { state.withLock { $0.closed = true } }
    }

    private func perform(_ action: Action, id: JSONValue) {
        switch action {
        case .reply(let result):
            write(["jsonrpc": "2.0", "id": id, "result": result])
        case .error(let message):
            write(["jsonrpc": "2.0", "id": id, "error": ["code": -32000, "message": JSONValue(message)]])
        case .ignore:
            break
        case .replyLater(let seconds, let result):
            Thread.detachNewThread { [self] in
                Thread.sleep(forTimeInterval: seconds)
                write(["jsonrpc": "2.0", "id": id, "result": result])
            }
        case .disconnect:
            close()
        case .raw(let bytes):
            writeLine(bytes)
        }
    }
}
