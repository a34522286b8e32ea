import TradewireBus
import TradewireJSON
import TradewireRPC

/// The consumer methods on a cluster node (PROTOCOL §11 across §13): the same answers as
/// ``ConsumerMethods``, read from and written to the cluster's store, so that a consumer's
/// members on every node share its events, its position and its dead letters.
enum SharedConsumerMethods {
    /// `subscribe {consumer}`: creates the consumer in the store or checks it, acknowledges,
    /// then joins (so the acknowledgement precedes the first delivery).
    static func subscribe(
        _ settings: ConsumerSettings, given: ConsumerOptionsGiven, since: Int?, text: String,
        _ shared: SharedConsumers, _ context: RequestContext
    ) -> MethodOutcome {
        let connection = context.connection
        let bus = context.daemon.bus
        return .deferredThen {
            let stored: ConsumerSettings
            do throws(RPCError) {
                stored = try await shared.store.open(settings, since: since).settings
                try ConsumerRegistry.check(stored, against: settings, given: given)
            } catch {
                return .failure(error)
            }
            let consumer = shared.consumer(stored)
            if let existing = consumer.subscription(of: connection.id) {
                return .success((ConsumerMethods.subscribeAck(existing, text: text, consumer: settings.name), {}))
            }
            let id = bus.reserveSubscriptionID()
            return .success(
                (
                    ConsumerMethods.subscribeAck(id, text: text, consumer: settings.name),
                    { consumer.join(connection, subscription: id) }
                ))
        }
    }

    static func ack(_ params: AckParams, _ shared: SharedConsumers, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let consumer = try shared.member(params.consumer, connectionID: context.connection.id)
        let member = context.connection.id
        return deferred { () async throws(RPCError) -> JSONValue in
            let acked: Int
            switch params.target {
            case .one(let seq): acked = try await consumer.ack(seq)
            case .upTo(let seq): acked = try await consumer.ack(upTo: seq, member: member)
            }
            return ["acked": JSONValue(acked)]
        }
    }

    static func nak(_ params: NakParams, _ shared: SharedConsumers, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let consumer = try shared.member(params.consumer, connectionID: context.connection.id)
        return deferred { () async throws(RPCError) -> JSONValue in
            _ = try await consumer.nak(
                params.seq, delay: params.delayMilliseconds.map { .milliseconds($0) }, error: params.error)
            return ["ok": true]
        }
    }

    static func getConsumers(_ shared: SharedConsumers, _ context: RequestContext) -> MethodOutcome {
        let newest = context.daemon.bus.lastSeq
        return deferred { () async throws(RPCError) -> JSONValue in
            ["consumers": .array(try await consumers(shared, newest: newest))]
        }
    }

    /// Every consumer as `get_consumers` lists it (`newest`: this node's newest seq, for `lag`).
    static func consumers(_ shared: SharedConsumers, newest: Int) async throws(RPCError) -> [JSONValue] {
        let here = shared.localMembers()
        return try await shared.store.list().map { summary in
            // Events wait in the shared journal, and none is dropped.
            ConsumerMethods.row(
                summary, members: summary.membersElsewhere + (here[summary.settings.name] ?? 0), waiting: 0,
                dropped: 0, newest: newest)
        }
    }

    static func deleteConsumer(_ name: String, _ shared: SharedConsumers) -> MethodOutcome {
        deferred { () async throws(RPCError) -> JSONValue in
            let removed = try await shared.store.delete(name)
            shared.forget(name)
            return ["removed": JSONValue(removed)]
        }
    }

    static func getDeadLetters(_ params: GetDeadLettersParams, _ shared: SharedConsumers) -> MethodOutcome {
        deferred { () async throws(RPCError) -> JSONValue in
            let letters = try await shared.store.deadLetters(consumer: params.consumer, limit: params.limit)
            return ["dead_letters": .array(letters.map { ConsumerRegistry.json($0, withEvent: true) })]
        }
    }

    static func retryDeadLetter(_ id: Int, _ shared: SharedConsumers) -> MethodOutcome {
        deferred { () async throws(RPCError) -> JSONValue in
            guard try await shared.store.retry(deadLetter: id) else { throw .deadLetterNotFound(id) }
            shared.wakeAll()
            return ["ok": true]
        }
    }

    static func discardDeadLetter(_ id: Int, _ shared: SharedConsumers) -> MethodOutcome {
        deferred { () async throws(RPCError) -> JSONValue in
            ["removed": JSONValue(try await shared.store.discard(deadLetter: id))]
        }
    }

    /// Work on the store whose result is a JSON value, or the error it threw.
    private static func deferred(_ work: @escaping @Sendable () async throws(RPCError) -> JSONValue) -> MethodOutcome {
        .deferred {
            do throws(RPCError) { return .success(JSONWriter.encode(try await work())) } catch {
                return .failure(error)
            }
        }
    }
}
