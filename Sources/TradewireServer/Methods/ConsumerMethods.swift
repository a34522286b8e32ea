import TradewireBus
import TradewireJSON
import TradewireRPC

/// Durable consumers and dead letters (PROTOCOL §11): the consumer side of `subscribe`,
/// `ack`, `nak` and their inspection.
enum ConsumerMethods {
    private static func objectWith(_ keys: [String]) -> JSONValue { DaemonMethods.objectWith(keys) }

    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(
            "ack", summary: "Acknowledge a consumer's event (seq), or all it has out here up to up_to_seq.",
            params: AckParams.self, result: objectWith(["acked"]), handler: ack)
        registry.register(
            "nak", summary: "Give a consumer's event back: redelivered after delay_ms (at once by default).",
            params: NakParams.self, result: objectWith(["ok"]), handler: nak)
        registry.register(
            "get_consumers", summary: "Every durable consumer: position, pending, redelivered, dead letters, members.",
            params: NoParameters.self, result: objectWith(["consumers"]), handler: getConsumers)
        registry.register(
            "delete_consumer", summary: "Remove a consumer with its position and dead letters.",
            params: ConsumerNameParams.self, result: objectWith(["removed"]), handler: deleteConsumer)
        registry.register(
            "get_dead_letters", summary: "Events consumers gave up on, oldest first (reading removes nothing).",
            params: GetDeadLettersParams.self, result: objectWith(["dead_letters"]), handler: getDeadLetters)
        registry.register(
            "retry_dead_letter", summary: "Deliver a dead letter to its consumer again, attempts from 1.",
            params: DeadLetterParams.self, result: objectWith(["ok"]), handler: retryDeadLetter)
        registry.register(
            "discard_dead_letter", summary: "Remove a dead letter.", params: DeadLetterParams.self,
            result: objectWith(["removed"]), handler: discardDeadLetter)
    }

    private static let ok: [UInt8] = Array(#"{"ok":true}"#.utf8)

    /// `subscribe {consumer}`: creates the consumer or checks it, acknowledges, then joins it
    /// (so the acknowledgement precedes the first delivery). Subscribing again on the same
    /// connection is a no-op.
    static func subscribe(
        _ params: SubscribeParams, name: String, _ context: RequestContext
    ) throws(RPCError) -> MethodOutcome {
        let registry = context.daemon.consumers
        let settings = ConsumerSettings(
            name: name, pattern: params.pattern,
            ackWaitMilliseconds: params.ackWaitMilliseconds ?? ConsumerSettings.defaultAckWaitMilliseconds,
            maxDeliver: params.maxDeliver ?? ConsumerSettings.defaultMaxDeliver,
            maxInFlight: params.maxInFlight ?? ConsumerSettings.defaultMaxInFlight)
        let given = ConsumerOptionsGiven(
            ackWait: params.ackWaitMilliseconds != nil, maxDeliver: params.maxDeliver != nil,
            maxInFlight: params.maxInFlight != nil)
        if let shared = context.daemon.sharedConsumers {
            return SharedConsumerMethods.subscribe(
                settings, given: given, since: params.sinceSeq, text: params.text, shared, context)
        }
        let consumer = try registry.consumer(settings, given: given, since: params.sinceSeq)
        let connection = context.connection
        if let existing = consumer.subscription(of: connection.id) {
            return .success(subscribeAck(existing, text: params.text, consumer: name))
        }
        let id = context.daemon.bus.reserveSubscriptionID()
        return .successThen(subscribeAck(id, text: params.text, consumer: name)) {
            consumer.join(connection, subscription: id)
        }
    }

    /// A consumer `subscribe`'s result.
    static func subscribeAck(_ id: SubscriptionID, text: String, consumer: String) -> [UInt8] {
        JSONWriter.encode(
            [
                "subscription": JSONValue(id.description), "event_type": JSONValue(text),
                "consumer": JSONValue(consumer),
            ] as JSONValue)
    }

    static func ack(_ params: AckParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers { return try SharedConsumerMethods.ack(params, shared, context) }
        let registry = context.daemon.consumers
        let consumer = try registry.member(params.consumer, connectionID: context.connection.id)
        let acked: Int
        switch params.target {
        case .one(let seq): acked = consumer.ack(seq)
        case .upTo(let seq): acked = consumer.ack(upTo: seq, member: context.connection.id)
        }
        registry.catchUpIfBehind(consumer)
        return .result(["acked": JSONValue(acked)] as JSONValue)
    }

    static func nak(_ params: NakParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers { return try SharedConsumerMethods.nak(params, shared, context) }
        let consumer = try context.daemon.consumers.member(params.consumer, connectionID: context.connection.id)
        _ = consumer.nak(params.seq, delay: params.delayMilliseconds.map { .milliseconds($0) }, error: params.error)
        return .success(ok)
    }

    static func getConsumers(_: NoParameters, _ context: RequestContext) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers { return SharedConsumerMethods.getConsumers(shared, context) }
        return .result(["consumers": .array(consumers(context.daemon.consumers))] as JSONValue)
    }

    /// Every consumer as `get_consumers` lists it.
    static func consumers(_ registry: ConsumerRegistry) -> [JSONValue] {
        let newest = registry.bus.lastSeq
        return registry.all.map { consumer in
            let state = consumer.snapshot()
            let summary = ConsumerSummary(
                settings: state.settings, position: state.position, pending: state.unacked.count,
                redelivered: state.redelivered, deadLetters: state.deadLetters.count,
                deadLettersEvicted: state.evicted, membersElsewhere: 0)
            return row(
                summary, members: consumer.memberCount, waiting: state.waiting, dropped: state.dropped, newest: newest)
        }
    }

    /// One `get_consumers` row (`newest`: this daemon's newest seq, for `lag`).
    static func row(_ summary: ConsumerSummary, members: Int, waiting: Int, dropped: Int, newest: Int) -> JSONValue {
        let settings = summary.settings
        return [
            "consumer": JSONValue(settings.name), "pattern": JSONValue(settings.pattern.text),
            "position": JSONValue(summary.position), "pending": JSONValue(summary.pending),
            "redelivered": JSONValue(summary.redelivered), "dead_letters": JSONValue(summary.deadLetters),
            "members": JSONValue(members), "waiting": JSONValue(waiting),
            "lag": JSONValue(max(0, newest - summary.position)),
            "ack_wait_ms": JSONValue(settings.ackWaitMilliseconds), "max_deliver": JSONValue(settings.maxDeliver),
            "max_in_flight": JSONValue(settings.maxInFlight), "dropped": JSONValue(dropped),
            "dead_letters_evicted": JSONValue(summary.deadLettersEvicted),
        ]
    }

    static func deleteConsumer(_ params: ConsumerNameParams, _ context: RequestContext) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers {
            return SharedConsumerMethods.deleteConsumer(params.consumer, shared)
        }
        return .result(["removed": JSONValue(context.daemon.consumers.delete(params.consumer))] as JSONValue)
    }

    static func getDeadLetters(_ params: GetDeadLettersParams, _ context: RequestContext) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers { return SharedConsumerMethods.getDeadLetters(params, shared) }
        let letters = deadLetters(
            context.daemon.consumers, consumer: params.consumer, limit: params.limit, withEvent: true)
        return .result(["dead_letters": .array(letters)] as JSONValue)
    }

    /// The oldest `limit` dead letters (of `consumer`, or of every consumer), as
    /// `get_dead_letters` lists them.
    static func deadLetters(_ registry: ConsumerRegistry, consumer: String?, limit: Int, withEvent: Bool)
        -> [JSONValue]
    {
        let consumers = registry.all.filter { consumer == nil || $0.settings.name == consumer }
        let letters = consumers.flatMap { $0.snapshot().deadLetters }.sorted { $0.id < $1.id }.prefix(limit)
        return letters.map { ConsumerRegistry.json($0, withEvent: withEvent) }
    }

    static func retryDeadLetter(_ params: DeadLetterParams, _ context: RequestContext) throws(RPCError) -> MethodOutcome
    {
        if let shared = context.daemon.sharedConsumers {
            return SharedConsumerMethods.retryDeadLetter(params.id, shared)
        }
        guard let consumer = context.daemon.consumers.holder(ofDeadLetter: params.id),
            consumer.retry(deadLetter: params.id)
        else { throw .deadLetterNotFound(params.id) }
        return .success(ok)
    }

    static func discardDeadLetter(_ params: DeadLetterParams, _ context: RequestContext) -> MethodOutcome {
        if let shared = context.daemon.sharedConsumers {
            return SharedConsumerMethods.discardDeadLetter(params.id, shared)
        }
        let removed = context.daemon.consumers.holder(ofDeadLetter: params.id)?.discard(deadLetter: params.id) ?? 0
        return .result(["removed": JSONValue(removed)] as JSONValue)
    }
}
