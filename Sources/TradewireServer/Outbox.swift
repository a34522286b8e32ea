import DequeModule
import NIOCore
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireRPC

/// A connection's outbound queue: responses, notifications and events waiting for the
/// socket. The bus hands events in from any thread (under its delivery lock, so in seq
/// order); the connection's event loop drains the queue while the socket is writable.
///
/// Events beyond the byte budget are dropped for that subscription and reported once per
/// episode with an `events_dropped` notice, queued as soon as there is room again, before
/// any later event of that subscription. Responses are never dropped but count against the
/// same budget: a connection over budget is not read further, and starts no further line or
/// batch entry, until it drains (see ``isOverBudget``).
final class Outbox: Sendable {
    enum Item: Sendable {
        case line([UInt8])
        /// A success response, written straight into the socket's buffer around the
        /// method's result (no line is assembled first).
        case response(id: JSONValue, result: [UInt8], size: Int)
        /// A publish's receipt (its success response), written from the event at drain time:
        /// `{"seq","event_type","timestamp","subscribers"}` (no bytes are built before).
        case receipt(id: JSONValue, Event, subscribers: Int, size: Int)
        /// `size` is what the item counts against the budget (taken at enqueue time).
        case event(prefix: EventPrefix, Event, size: Int)
        /// A consumer's delivery (PROTOCOL §11): never dropped.
        case delivery(prefix: DeliveryPrefix, Event, attempt: Int, size: Int)
    }

    /// `{"jsonrpc":"2.0","method":"event","params":{"subscription":"s-N","delivery":{"consumer":"NAME","attempt":`
    /// for one consumer membership (the name is of the event-type alphabet: nothing to escape).
    final class DeliveryPrefix: Sendable {
        let bytes: [UInt8]
        init(_ subscription: SubscriptionID, consumer: String) {
            self.bytes = Array(
                #"{"jsonrpc":"2.0","method":"event","params":{"subscription":"\#(subscription)","delivery":{"consumer":"\#(consumer)","attempt":"#
                    .utf8)
        }
    }

    /// `{"jsonrpc":"2.0","method":"event","params":{"subscription":"s-N","event":` for one subscription.
    final class EventPrefix: Sendable {
        let subscription: SubscriptionID
        let bytes: [UInt8]
        init(_ subscription: SubscriptionID) {
            self.subscription = subscription
            self.bytes = Array(
                #"{"jsonrpc":"2.0","method":"event","params":{"subscription":"\#(subscription)","event":"#.utf8)
        }
    }

    struct DropEpisode: Sendable {
        var count: Int?
        var firstSeq: Int
        var lastSeq: Int
    }

    private struct State {
        var items: Deque<Item> = []
        var bytes = 0
        var flushScheduled = false
        var closed = false
        var pendingDrops: [SubscriptionID: DropEpisode] = [:]
        var droppedTotal = 0
        /// Response bytes held outside the queue for this connection (a batch still being
        /// answered): they count against the budget like queued bytes.
        var held = 0

        var used: Int { bytes + held }
    }

    let budget: Int
    private let state = Mutex(State())
    private let eventLoop: any EventLoop
    private let drainer: @Sendable () -> Void

    /// - Parameter drain: runs on `eventLoop` to move queued bytes to the socket.
    init(budget: Int, eventLoop: any EventLoop, drain: @escaping @Sendable () -> Void) {
        self.budget = budget
        self.eventLoop = eventLoop
        self.drainer = drain
    }

    /// Events dropped on this connection so far.
    var droppedTotal: Int { state.withLock { $0.droppedTotal } }
    var queuedBytes: Int { state.withLock { $0.bytes } }
    /// Nothing queued and no drop notice pending.
    var isEmpty: Bool { state.withLock { $0.items.isEmpty && $0.pendingDrops.isEmpty } }
    /// True when queued and held bytes exceed the budget: the connection is not read further.
    var isOverBudget: Bool { state.withLock { $0.used > budget } }

    /// Counts response bytes kept elsewhere (a batch's answers) against the budget.
    func hold(_ count: Int) { state.withLock { $0.held += count } }

    /// Gives back what ``hold(_:)`` counted.
    func release(_ count: Int) { state.withLock { $0.held = max(0, $0.held - count) } }

    /// Queues a response or notification line (never dropped).
    func enqueue(line: [UInt8]) {
        enqueueNeverDropped(.line(line), size: line.count + 1)
    }

    /// Queues a success response to request `id` (never dropped): `{"jsonrpc":"2.0","id":…,"result":…}`.
    func enqueue(response id: JSONValue, result: [UInt8]) {
        let size = Self.responseOverhead + id.estimatedJSONBytes + result.count
        enqueueNeverDropped(.response(id: id, result: result, size: size), size: size)
    }

    /// Queues an item that is never dropped (it counts against the budget all the same).
    private func enqueueNeverDropped(_ item: Item, size: Int) {
        let schedule: Bool = state.withLock { state in
            guard !state.closed else { return false }
            state.items.append(item)
            state.bytes += size
            return Self.claimFlush(&state)
        }
        if schedule { scheduleDrain() }
    }

    /// `{"jsonrpc":"2.0","id":` + `,"result":` + `}` + the newline.
    private static let responseOverhead = 22 + 10 + 1 + 1

    /// Queues the receipt of a publish that was delivered with nothing left to await
    /// (never dropped): the success response to request `id`.
    ///
    /// The event's type must be a valid event type (``EventName/validateType(_:)``): its
    /// characters are written as they are, with nothing to escape.
    func enqueue(receipt id: JSONValue, event: Event, subscribers: Int) {
        // `{"seq":` + 20 digits + `,"event_type":""` + `,"timestamp":` + 29 + `,"subscribers":` + 20 + `}`.
        let size = Self.responseOverhead + id.estimatedJSONBytes + 120 + event.type.utf8.count
        enqueueNeverDropped(.receipt(id: id, event, subscribers: subscribers, size: size), size: size)
    }

    /// Queues an event for a subscription, or drops it when over budget. Called by the bus,
    /// under its delivery lock: the event is not encoded here (the connection's own event
    /// loop does that while draining, once for all subscribers), so the budget counts the
    /// exact size when it is already known and the payload's estimate otherwise.
    func enqueue(event: Event, prefix: EventPrefix) {
        let size = event.knownOrEstimatedJSONBytes + prefix.bytes.count + 3
        let schedule: Bool = state.withLock { state in
            guard !state.closed else { return false }
            let id = prefix.subscription
            if let episode = state.pendingDrops[id] {
                let notice = Self.dropNotice(id, episode)
                if state.used + notice.count + 1 + size <= budget {
                    state.items.append(.line(notice))
                    state.bytes += notice.count + 1
                    state.pendingDrops[id] = nil
                } else {
                    Self.drop(event.seq, id, &state)
                    return false
                }
            } else if state.used + size > budget {
                Self.drop(event.seq, id, &state)
                return false
            }
            state.items.append(.event(prefix: prefix, event, size: size))
            state.bytes += size
            return Self.claimFlush(&state)
        }
        if schedule { scheduleDrain() }
    }

    /// Queues a consumer's delivery. Never dropped (PROTOCOL §14): the consumer's
    /// `max_in_flight` bounds what it has out, and it skips a member over budget.
    func enqueue(delivery event: Event, prefix: DeliveryPrefix, attempt: Int) {
        let size = event.knownOrEstimatedJSONBytes + prefix.bytes.count + 16
        enqueueNeverDropped(.delivery(prefix: prefix, event, attempt: attempt, size: size), size: size)
    }

    /// Reports a replay gap (`since_seq` older than history): `count` null.
    func enqueueGap(_ subscription: SubscriptionID, firstSeq: Int, lastSeq: Int) {
        enqueue(line: Self.dropNotice(subscription, DropEpisode(count: nil, firstSeq: firstSeq, lastSeq: lastSeq)))
    }

    private static func drop(_ seq: Int, _ id: SubscriptionID, _ state: inout State) {
        state.droppedTotal += 1
        if var episode = state.pendingDrops[id] {
            episode.count = (episode.count ?? 0) + 1
            episode.lastSeq = seq
            state.pendingDrops[id] = episode
        } else {
            state.pendingDrops[id] = DropEpisode(count: 1, firstSeq: seq, lastSeq: seq)
        }
    }

    static func dropNotice(_ id: SubscriptionID, _ episode: DropEpisode) -> [UInt8] {
        let params: JSONValue = [
            "subscription": JSONValue(id.description),
            "count": episode.count.map { JSONValue($0) } ?? .null,
            "first_seq": JSONValue(episode.firstSeq),
            "last_seq": JSONValue(episode.lastSeq),
        ]
        return RPCResponse.notification(method: "events_dropped", params: params)
    }

    private static func claimFlush(_ state: inout State) -> Bool {
        guard !state.flushScheduled else { return false }
        state.flushScheduled = true
        return true
    }

    private func scheduleDrain() {
        if WakeupBatch.deferWake(self) { return }
        wake()
    }

    /// Runs a drain on the connection's event loop (the flush was already claimed): now when
    /// `inline` and this is that loop's thread (the end of a burst, where nothing is half
    /// done), else as a task on the loop.
    func wake(inline: Bool = false) {
        if inline && eventLoop.inEventLoop { return drainer() }
        let drain = drainer
        eventLoop.execute { drain() }
    }

    /// Takes up to `maxBytes` of queued items (at least one) for writing. When the queue
    /// empties, pending drop notices are queued first. Returns nil when nothing is left,
    /// and re-arms scheduling.
    func take(maxBytes: Int) -> [Item]? {
        state.withLock { state in
            if state.items.isEmpty && !state.pendingDrops.isEmpty {
                for (id, episode) in state.pendingDrops.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    let notice = Self.dropNotice(id, episode)
                    state.items.append(.line(notice))
                    state.bytes += notice.count + 1
                }
                state.pendingDrops.removeAll()
            }
            guard !state.items.isEmpty else {
                state.flushScheduled = false
                return nil
            }
            var taken: [Item] = []
            var size = 0
            while let item = state.items.first, taken.isEmpty || size < maxBytes {
                state.items.removeFirst()
                let itemSize: Int
                switch item {
                case .line(let bytes): itemSize = bytes.count + 1
                case .event(_, _, let size), .delivery(_, _, _, let size), .response(_, _, let size),
                    .receipt(_, _, _, let size):
                    itemSize = size
                }
                size += itemSize
                taken.append(item)
            }
            state.bytes -= size
            return taken
        }
    }

    /// Marks the drain as paused (socket not writable); the next writability change resumes it.
    func pause() { state.withLock { $0.flushScheduled = false } }

    /// Re-arms a drain if anything is queued (after the socket became writable again).
    func resume() {
        let schedule = state.withLock { state in
            (!state.items.isEmpty || !state.pendingDrops.isEmpty) && Self.claimFlush(&state)
        }
        if schedule { scheduleDrain() }
    }

    /// Drops everything queued; later enqueues are ignored (the connection is gone).
    func close() {
        state.withLock { state in
            state.closed = true
            state.items.removeAll()
            state.bytes = 0
            state.pendingDrops.removeAll()
        }
    }

    /// Writes items into one buffer: each line plus `\n`.
    static func write(_ items: [Item], into buffer: inout ByteBuffer) {
        for item in items {
            switch item {
            case .line(let bytes):
                buffer.writeBytes(bytes)
            case .response(let id, let result, _):
                writeResponseStart(id, into: &buffer)
                buffer.writeBytes(result)
                buffer.writeStaticString("}")
            case .receipt(let id, let event, let subscribers, _):
                writeResponseStart(id, into: &buffer)
                buffer.writeStaticString(#"{"seq":"#)
                DecimalDigits.withText(of: event.seq) { _ = buffer.writeBytes($0) }
                buffer.writeStaticString(#","event_type":""#)
                buffer.writeString(event.type)
                buffer.writeStaticString(#"","timestamp":"#)
                event.timestampText.withUnsafeBytes { _ = buffer.writeBytes($0) }
                buffer.writeStaticString(#","subscribers":"#)
                DecimalDigits.withText(of: subscribers) { _ = buffer.writeBytes($0) }
                buffer.writeStaticString("}}")
            case .event(let prefix, let event, _):
                buffer.writeBytes(prefix.bytes)
                buffer.writeBytes(event.json)
                buffer.writeStaticString("}}")
            case .delivery(let prefix, let event, let attempt, _):
                buffer.writeBytes(prefix.bytes)
                DecimalDigits.withText(of: attempt) { _ = buffer.writeBytes($0) }
                buffer.writeStaticString(#"},"event":"#)
                buffer.writeBytes(event.json)
                buffer.writeStaticString("}}")
            }
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
    }

    /// `{"jsonrpc":"2.0","id":ID,"result":`
    private static func writeResponseStart(_ id: JSONValue, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"jsonrpc":"2.0","id":"#)
        if case .number(let number) = id {
            buffer.writeString(number.text)
        } else {
            buffer.writeBytes(JSONWriter.encode(id))
        }
        buffer.writeStaticString(#","result":"#)
    }
}
