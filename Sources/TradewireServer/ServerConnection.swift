import NIOCore
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireRPC

/// One client connection as the rest of the daemon sees it: its id, its outbox, its owner
/// identity on the bus.
public final class ServerConnection: Sendable {
    public let id: Int
    let outbox: Outbox
    let eventLoop: any EventLoop
    /// Asks the connection to close once everything queued has been written (graceful stop).
    let closeWhenFlushed: @Sendable () -> Void
    /// Subscriptions acknowledged but not yet live (by pattern), so that a second identical
    /// subscribe in the same batch is the no-op it would be later.
    private let pendingSubscriptions = Mutex<[String: SubscriptionID]>([:])
    /// This connection's publish allowance (`--publish-rate`); nil: unlimited.
    let publishBucket: TokenBucket?
    /// Requests started and not answered yet. Counted on the event loop; a journaled
    /// publish's receipt is queued, and counted off, by the journal's writer thread.
    let requestsInFlight = Atomic<Int>(0)
    /// Set on the event loop once the client shut its writing side: whoever answers the
    /// last request in flight then lets the event loop close the connection.
    let inputClosed = Atomic<Bool>(false)

    init(
        id: Int, outbox: Outbox, eventLoop: any EventLoop, publishRate: PublishRate? = nil,
        closeWhenFlushed: @escaping @Sendable () -> Void
    ) {
        self.id = id
        self.outbox = outbox
        self.eventLoop = eventLoop
        self.publishBucket = publishRate.map { TokenBucket(rate: $0) }
        self.closeWhenFlushed = closeWhenFlushed
    }

    var owner: SubscriberOwner { .client(connection: id) }

    func pendingSubscription(_ pattern: String) -> SubscriptionID? { pendingSubscriptions.withLock { $0[pattern] } }

    func setPendingSubscription(_ pattern: String, _ id: SubscriptionID?) {
        pendingSubscriptions.withLock { $0[pattern] = id }
    }

    /// Queues a response for `id` (nothing for notifications).
    func respond(id: JSONValue?, _ result: Result<[UInt8], RPCError>) {
        guard let id else { return }
        switch result {
        case .success(let raw): outbox.enqueue(response: id, result: raw)
        case .failure(let error): outbox.enqueue(line: RPCResponse.failure(id: id, error: error))
        }
    }

    static func responseLine(id: JSONValue?, _ result: Result<[UInt8], RPCError>) -> [UInt8]? {
        guard let id else { return nil }
        switch result {
        case .success(let raw): return RPCResponse.success(id: id, rawResult: raw)
        case .failure(let error): return RPCResponse.failure(id: id, error: error)
        }
    }

    /// Sends a server notification.
    func notify(method: String, params: JSONValue) {
        outbox.enqueue(line: RPCResponse.notification(method: method, params: params))
    }
}

/// The context a method handler gets: the connection that asked and the daemon.
public struct RequestContext: Sendable {
    public let connection: ServerConnection
    public let daemon: Daemon
}

/// Counts the answers of one batch and writes them as one array when the last arrives.
/// Answers held here count against the connection's outbox budget until then.
final class BatchCollector {
    private var responses: [[UInt8]] = []
    private var outstanding: Int
    private var heldBytes = 0
    private let connection: ServerConnection
    /// Runs once, right after the batch array is queued (e.g. `shutdown` starts the drain).
    var afterWrite: [() -> Void] = []

    init(expected: Int, connection: ServerConnection) {
        self.outstanding = expected
        self.connection = connection
    }

    /// Adds one entry's answer (nil for notifications); writes the batch when complete.
    func add(_ line: [UInt8]?) {
        if let line {
            responses.append(line)
            heldBytes += line.count + 1
            connection.outbox.hold(line.count + 1)
        }
        outstanding -= 1
        guard outstanding == 0 else { return }
        connection.outbox.release(heldBytes)
        heldBytes = 0
        if !responses.isEmpty {
            connection.outbox.enqueue(line: RPCResponse.batch(responses))
            responses = []
        }
        let hooks = afterWrite
        afterWrite = []
        for hook in hooks { hook() }
    }
}
