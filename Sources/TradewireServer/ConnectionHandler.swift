import Logging
import NIOCore
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireRPC

/// The per-connection protocol engine, on the connection's event loop.
///
/// Reader: frames lines, parses JSON-RPC and dispatches; cheap methods answer on the spot,
/// slow ones run as tasks and hop back to answer. Writer: drains the connection's
/// ``Outbox`` while the socket is writable. When the outbox is over budget (a client that
/// sends but does not read), reading pauses until it drains, so memory stays bounded.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let daemon: Daemon
    private var framer: LineFramer
    private var connection: ServerConnection?
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var admitted = false
    private var pendingInput: [ByteBuffer] = []
    /// Input read but not started because the connection was over its outbound budget.
    private var heldInput: ByteBuffer?
    /// The rest of a batch whose entries wait for the outbound budget (before `heldInput`).
    private var heldBatch: (entries: ArraySlice<RPCEntry>, collector: BatchCollector)?
    /// The client shut its writing side (`echo … | socat`): answer what it sent, then close.
    /// Kept on the connection, where the threads that answer journaled publishes see it.
    private var inputClosed: Bool { connection?.inputClosed.load(ordering: .sequentiallyConsistent) ?? false }
    /// The daemon is stopping: nothing more is read, and the connection closes once every
    /// queued byte has reached the socket.
    private var closing = false
    /// True while ``drain()`` runs (a drain asked for meanwhile is run after it).
    private var draining = false
    /// The event type of this connection's last publish on the fast path: a publisher that
    /// repeats a type reuses this string.
    private var lastPublishType: String?
    /// Requests started and not answered yet (some are answered from other threads).
    private var inFlight: Int { connection?.requestsInFlight.load(ordering: .sequentiallyConsistent) ?? 0 }
    private let logger: Logger

    init(daemon: Daemon) {
        self.daemon = daemon
        self.framer = LineFramer(maximumLineBytes: daemon.configuration.maxMessageBytes)
        self.logger = daemon.logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = daemon.connections.makeConnectionID()
        let outbox = Outbox(budget: daemon.configuration.outboxBudgetBytes, eventLoop: context.eventLoop) {
            loopBound.value.drain()
        }
        let eventLoop = context.eventLoop
        connection = ServerConnection(
            id: id, outbox: outbox, eventLoop: eventLoop, publishRate: daemon.configuration.publishRate
        ) {
            eventLoop.execute { loopBound.value.closeAfterFlush() }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let configuration = daemon.configuration
        PeerCredentials.read(from: context.channel).whenComplete { result in
            let handler = loopBound.value
            switch result {
            case .success(let peer)
            where peer.isAllowed(allowedUIDs: configuration.allowedUIDs, allowedGIDs: configuration.allowedGIDs):
                handler.admit(peer: peer)
            case .success(let peer):
                handler.refuse(uid: peer.uid)
            case .failure(let error):
                handler.logger.warning("server.peer.credentials.failed", metadata: ["error": "\(error)"])
                handler.refuse(uid: UInt32.max)
            }
        }
        context.fireChannelActive()
    }

    private func admit(peer: PeerCredentials) {
        guard let connection, let context else { return }
        guard daemon.connections.admit(connection) else {
            let limit = daemon.configuration.maxConnections
            logger.warning("server.connection.over_limit", metadata: ["max_connections": "\(limit)"])
            refuse(with: .tooManyConnections(limit: limit))
            return
        }
        admitted = true
        logger.debug(
            "server.connection.opened",
            metadata: ["connection": "\(connection.id)", "peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)"])
        if daemon.connections.isDraining {
            connection.notify(method: "shutdown", params: ["reason": "daemon is shutting down"])
            closeAfterFlush()
            return
        }
        let buffered = pendingInput
        pendingInput = []
        for buffer in buffered {
            if isPaused { hold(buffer) } else { consume(buffer, context: context) }
        }
        closeIfFinished()
    }

    private func refuse(uid: UInt32) {
        logger.notice("server.connection.forbidden", metadata: ["peer.uid": "\(uid)"])
        refuse(with: .forbidden(uid: uid))
    }

    /// Writes one error line (id null), then closes; nothing the client sent is read.
    private func refuse(with error: RPCError) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 160)
        buffer.writeBytes(RPCResponse.failure(id: .null, error: error))
        buffer.writeInteger(UInt8(ascii: "\n"))
        pendingInput = []
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            connection.outbox.close()
            if admitted { daemon.connectionClosed(connection) }
            logger.debug("server.connection.closed", metadata: ["connection": "\(connection.id)"])
        }
        // The outbox's drain closure holds this handler: dropping the connection here breaks
        // the cycle (handler → connection → outbox → handler) so a closed connection is freed.
        self.connection = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard admitted else {
            // Credentials are still being checked; keep the bytes until then.
            pendingInput.append(buffer)
            return
        }
        guard !closing else { return }
        guard !isPaused else {
            hold(buffer)
            return
        }
        consume(buffer, context: context)
    }

    private func consume(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        WakeupBatch.collectForReadRound(on: context.eventLoop) { process(buffer) }
    }

    /// Frames and starts requests until the connection goes over its outbound budget; what is
    /// left waits in `heldInput` until the outbox drains.
    private func process(_ buffer: ByteBuffer) {
        var buffer = buffer
        let limit = daemon.configuration.maxMessageBytes
        let consumed = buffer.withUnsafeReadableBytes { bytes in
            // Lines are parsed where they lie in the read buffer (no copy per request).
            framer.feed(
                bytes,
                onLine: { line in handle(line: line) },
                onTooLong: {
                    guard let connection else { return }
                    connection.respond(id: .null, .failure(.messageTooLarge(limit: limit)))
                    daemon.stages.oversizedLine(from: connection.id, limit: limit)
                },
                shouldPause: { mustPause })
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readableBytes > 0 { hold(buffer) }
    }

    /// True while input waits for the outbound budget (reading is suspended meanwhile).
    private var isPaused: Bool { heldInput != nil || heldBatch != nil }

    private var mustPause: Bool { heldBatch != nil || (connection?.outbox.isOverBudget ?? false) }

    private func hold(_ buffer: ByteBuffer) {
        if var held = heldInput {
            var more = buffer
            held.writeBuffer(&more)
            heldInput = held
        } else {
            heldInput = buffer
        }
    }

    /// Starts held input again once the outbox is back within its budget.
    private func resumeInput() {
        guard isPaused, let connection, !connection.outbox.isOverBudget else { return }
        WakeupBatch.collect {
            if let batch = heldBatch {
                heldBatch = nil
                runBatch(batch.entries, batch.collector)
            }
            guard heldBatch == nil, let input = heldInput else { return }
            heldInput = nil
            process(input)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection?.outbox.resume() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            connection?.inputClosed.store(true, ordering: .sequentiallyConsistent)
            closeIfFinished()
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// After the client's input closed: close once every answer is written, unless the
    /// connection still has subscriptions (a `subscribe` piped from a script keeps listening).
    private func closeIfFinished() {
        guard inputClosed, admitted, inFlight == 0, !isPaused, let context, let connection,
            connection.outbox.queuedBytes == 0, daemon.bus.subscriptionCount(owner: connection.owner) == 0
        else { return }
        // Close once everything already written has reached the socket.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("server.connection.error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: backpressure on reading

    func read(context: ChannelHandlerContext) {
        if closing { return }
        if isPaused || connection?.outbox.isOverBudget == true {
            readPending = true
            return
        }
        context.read()
    }

    // MARK: writing

    /// Moves queued bytes to the socket while it is writable (runs on the event loop).
    ///
    /// Writability is re-checked after every flush: a flush may drain the socket and fire
    /// the writable notification inline, while this drain still holds the outbox's flag.
    func drain() {
        guard let context, let connection else { return }
        guard !draining else {
            // A burst started from inside a drain (held input resumed) woke this outbox:
            // drain again once this one is over, not nested in it.
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { loopBound.value.drain() }
            return
        }
        draining = true
        defer { draining = false }
        while true {
            guard context.channel.isWritable else {
                connection.outbox.pause()
                break
            }
            guard let items = connection.outbox.take(maxBytes: 256 << 10) else { break }
            var buffer = context.channel.allocator.buffer(capacity: 4096)
            Outbox.write(items, into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !connection.outbox.isOverBudget { resumeInput() }
        if readPending && !isPaused && !connection.outbox.isOverBudget {
            readPending = false
            context.read()
        }
        if inputClosed { closeIfFinished() }
        if closing { closeIfFlushed() }
    }

    // MARK: graceful stop

    /// Stops reading and closes the connection once everything queued for it has been
    /// written to the socket (the daemon's drain; it force-closes what is left at the end
    /// of the grace period).
    func closeAfterFlush() {
        guard !closing else { return }
        closing = true
        heldInput = nil
        heldBatch = nil
        drain()
    }

    private func closeIfFlushed() {
        guard let context, let connection, connection.outbox.isEmpty else { return }
        // The write promise completes once NIO's pending writes reached the kernel.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: requests

    private func handle(line: UnsafeRawBufferPointer) {
        guard let connection else { return }
        if let publish = PublishEnvelope.scan(line, previousType: lastPublishType), let params = PublishParams(publish)
        {
            lastPublishType = publish.eventType
            // The frequent line, read without a tree or a method lookup; the same checks and
            // the same method as through the table. A receipt due now is written from the
            // event when the outbox drains.
            guard admit(id: publish.id, batch: nil) else { return }
            let answer: DaemonMethods.PublishAnswer
            do {
                answer = try DaemonMethods.publishAnswer(params, RequestContext(connection: connection, daemon: daemon))
            } catch { answer = .outcome(.failure(error)) }
            switch answer {
            case .receipt(let published):
                connection.outbox.enqueue(
                    receipt: publish.id, event: published.event, subscribers: published.clientSubscribers)
            case .afterDispatch(let published, let stopwatch):
                answerAfterDispatch(publish.id, published, stopwatch)
            case .outcome(let outcome):
                finish(id: publish.id, batch: nil, outcome)
            }
            return
        }
        switch RPCMessageParser.parse(line) {
        case .failure(let error):
            connection.respond(id: .null, .failure(error))
        case .single(let entry):
            run(entry, batch: nil)
        case .batch(let entries):
            runBatch(entries[...], BatchCollector(expected: entries.count, connection: connection))
        }
    }

    /// Starts a batch's entries while the connection is within its outbound budget; the rest
    /// waits in `heldBatch`. When the batch's own answers are what exceeds the budget (nothing
    /// queued could drain), its remaining entries are answered -32001 instead of started.
    private func runBatch(_ entries: ArraySlice<RPCEntry>, _ collector: BatchCollector) {
        guard let connection else { return }
        var rest = entries
        while let entry = rest.first {
            if connection.outbox.isOverBudget {
                guard connection.outbox.queuedBytes == 0 else {
                    heldBatch = (rest, collector)
                    return
                }
                let error = RPCError.batchOverBudget(budget: connection.outbox.budget)
                for entry in rest {
                    switch entry {
                    case .request(let request):
                        collector.add(ServerConnection.responseLine(id: request.id, .failure(error)))
                    case .invalid(let invalid, let id):
                        collector.add(ServerConnection.responseLine(id: id, .failure(invalid)))
                    case .invalidNotification: collector.add(nil)
                    case .reply(let reply):
                        // A member's answer is routed whatever the budget (it frees work).
                        daemon.stages.receive(reply, from: connection.id)
                        collector.add(nil)
                    }
                }
                return
            }
            rest = rest.dropFirst()
            run(entry, batch: collector)
        }
    }

    /// Answers a publish that waits for its journal batch from the thread that settles it
    /// (the journal's writer): its receipt, or its error, goes straight into the outbox, with
    /// no closure chain and no hop through this event loop. Only the last answer of a
    /// connection whose input closed hops here, to close it once everything is written.
    private func answerAfterDispatch(_ id: JSONValue, _ published: PublishedEvent, _ stopwatch: MetricsStopwatch) {
        guard let eventLoop = context?.eventLoop, let connection else { return }
        connection.requestsInFlight.add(1, ordering: .sequentiallyConsistent)
        let connections = daemon.connections
        connections.workStarted()
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        DaemonMethods.whenSettled(published, stopwatch) { settled in
            switch settled {
            case .success:
                connection.outbox.enqueue(
                    receipt: id, event: published.event, subscribers: published.clientSubscribers)
            case .failure(let error):
                connection.respond(id: id, .failure(error))
            }
            // Counted off after the answer is queued: a drain that sees no request in flight
            // also sees the answer. One that ran before the count fell is followed by this hop.
            connections.workFinished()
            let left = connection.requestsInFlight.subtract(1, ordering: .sequentiallyConsistent).newValue
            if left == 0 && connection.inputClosed.load(ordering: .sequentiallyConsistent) {
                eventLoop.execute { loopBound.value.closeIfFinished() }
            }
        }
    }

    /// Counts a request whose answer comes from another thread, and returns the completion
    /// that answers it on this connection's event loop (nil once the connection is gone).
    private func answerLater(
        _ id: JSONValue?, _ answer: @escaping (JSONValue?, Result<[UInt8], RPCError>) -> Void
    ) -> (@Sendable (Result<[UInt8], RPCError>) -> Void)? {
        guard let complete = answerLaterThen(id, { id, result, _ in answer(id, result) }) else { return nil }
        return { result in complete(result, nil) }
    }

    /// ``answerLater(_:_:)`` whose completion also carries work to run once the answer is
    /// queued.
    private func answerLaterThen(
        _ id: JSONValue?,
        _ answer: @escaping (JSONValue?, Result<[UInt8], RPCError>, (@Sendable () -> Void)?) -> Void
    ) -> (@Sendable (Result<[UInt8], RPCError>, (@Sendable () -> Void)?) -> Void)? {
        guard let eventLoop = context?.eventLoop, let connection else { return nil }
        connection.requestsInFlight.add(1, ordering: .sequentiallyConsistent)
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        // `answer` only touches EL-confined state (the batch) on the event loop.
        let boundAnswer = NIOLoopBound(answer, eventLoop: eventLoop)
        let daemon = self.daemon
        daemon.connections.workStarted()
        return { result, afterWrite in
            daemon.connections.workFinished()
            WakeupBatch.execute(on: eventLoop) {
                connection.requestsInFlight.subtract(1, ordering: .sequentiallyConsistent)
                // A connection that closed meanwhile was already cleaned up: what would go
                // live after the answer (a subscription, a consumer membership) must not.
                let live = loopBound.value.connection != nil
                boundAnswer.value(id, result, live ? afterWrite : nil)
            }
        }
    }

    private func run(_ entry: RPCEntry, batch: BatchCollector?) {
        guard let connection else { return }
        let request: RPCRequest
        switch entry {
        case .invalid(let error, let id):
            Self.answer(id, .failure(error), batch: batch, connection: connection)
            return
        case .invalidNotification:
            batch?.add(nil)
            return
        case .reply(let reply):
            // A member's answer to a stage call: routed, never answered.
            daemon.stages.receive(reply, from: connection.id)
            batch?.add(nil)
            return
        case .request(let r):
            request = r
        }
        let dispatcher = daemon.dispatcher
        start(id: request.id, batch: batch) { context in dispatcher.dispatch(request, context: context) }
    }

    /// Runs one request's method (unless the daemon is draining or the connection has too
    /// many requests in flight) and answers it, now or once its work is done.
    private func start(
        id: JSONValue?, batch: BatchCollector?, _ method: (RequestContext) throws(RPCError) -> MethodOutcome
    ) {
        guard let connection, admit(id: id, batch: batch) else { return }
        let outcome: MethodOutcome
        do { outcome = try method(RequestContext(connection: connection, daemon: daemon)) } catch {
            outcome = .failure(error)
        }
        finish(id: id, batch: batch, outcome)
    }

    /// False, with the request answered, when the daemon is draining or the connection has
    /// too many requests in flight: the method must not run.
    private func admit(id: JSONValue?, batch: BatchCollector?) -> Bool {
        guard let connection else { return false }
        if daemon.connections.isDraining {
            Self.answer(id, .failure(.shuttingDown), batch: batch, connection: connection)
            return false
        }
        if inFlight >= daemon.configuration.maxInFlight {
            Self.answer(
                id, .failure(.overloaded(limit: daemon.configuration.maxInFlight)), batch: batch, connection: connection
            )
            return false
        }
        return true
    }

    /// Answers a method's outcome: now, or once its work is done.
    private func finish(id: JSONValue?, batch: BatchCollector?, _ outcome: MethodOutcome) {
        guard let connection else { return }
        // The answer for the request's own turn is a plain call; a closure (one allocation)
        // is made only for the answers that come later.
        func answer(_ id: JSONValue?, _ result: Result<[UInt8], RPCError>) {
            Self.answer(id, result, batch: batch, connection: connection)
        }
        func laterAnswer() -> (JSONValue?, Result<[UInt8], RPCError>) -> Void {
            { id, result in Self.answer(id, result, batch: batch, connection: connection) }
        }
        switch outcome {
        case .success(let bytes):
            answer(id, .success(bytes))
        case .failure(let error):
            if error.code == -32603 {
                logger.error(
                    "server.request.internal_error",
                    metadata: ["request.id": "\(id ?? .null)", "error": "\(error)"])
            }
            answer(id, .failure(error))
        case .successThen(let bytes, let afterWrite):
            if let batch {
                batch.afterWrite.append(afterWrite)
                answer(id, .success(bytes))
            } else {
                answer(id, .success(bytes))
                afterWrite()
            }
        case .later(let register):
            guard let complete = answerLater(id, laterAnswer()) else { return }
            register(complete)
        case .deferred(let work):
            guard let complete = answerLater(id, laterAnswer()) else { return }
            Task { complete(await work()) }
        case .deferredThen(let work):
            let answerThen: (JSONValue?, Result<[UInt8], RPCError>, (@Sendable () -> Void)?) -> Void = {
                id, result, afterWrite in
                if let batch, let afterWrite {
                    batch.afterWrite.append(afterWrite)
                    Self.answer(id, result, batch: batch, connection: connection)
                } else {
                    Self.answer(id, result, batch: batch, connection: connection)
                    afterWrite?()
                }
            }
            guard let complete = answerLaterThen(id, answerThen) else { return }
            Task {
                switch await work() {
                case .success(let (bytes, afterWrite)): complete(.success(bytes), afterWrite)
                case .failure(let error): complete(.failure(error), nil)
                }
            }
        }
    }

    /// Queues one answer: on the connection, or in its batch. `id` nil (a notification)
    /// yields no line; the batch still counts the entry.
    private static func answer(
        _ id: JSONValue?, _ result: Result<[UInt8], RPCError>, batch: BatchCollector?, connection: ServerConnection
    ) {
        if let batch {
            batch.add(ServerConnection.responseLine(id: id, result))
        } else {
            connection.respond(id: id, result)
        }
    }
}
