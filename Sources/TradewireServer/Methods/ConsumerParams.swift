import TradewireBus
import TradewireJSON
import TradewireRPC

/// Parameters of the consumer methods (PROTOCOL §11).
enum ConsumerParams {
    static let consumer = Param<String>.string("consumer", summary: "The consumer's name.")
    static let deadLetterID = Param<Int>.int("id", in: 1...Int.max, summary: "A dead letter's id (get_dead_letters).")
    /// Longest `nak.error` kept.
    static let maximumErrorLength = 1024
}

struct AckParams: MethodParameters {
    static let seq = Param<Int?>.optionalInt("seq", in: 1...Int.max, summary: "Acknowledge this event.")
    static let upToSeq = Param<Int?>.optionalInt(
        "up_to_seq", in: 0...Int.max, summary: "Acknowledge every event out at this connection up to this seq.")
    static let parameters = [ConsumerParams.consumer.description, seq.description, upToSeq.description]

    enum Target {
        case one(Int)
        case upTo(Int)
    }
    var consumer: String
    var target: Target

    init(from params: ParamReader) throws(RPCError) {
        consumer = try params(ConsumerParams.consumer)
        switch (try params(Self.seq), try params(Self.upToSeq)) {
        case (let seq?, nil): target = .one(seq)
        case (nil, let upTo?): target = .upTo(upTo)
        default: throw .invalidParams(path: "", "give exactly one of seq or up_to_seq")
        }
    }
}

struct NakParams: MethodParameters {
    static let seq = Param<Int>.int("seq", in: 1...Int.max, summary: "The event to redeliver.")
    static let delay = Param<Int?>.optionalInt(
        "delay_ms", in: ConsumerSettings.ackWaitRange.lowerBound - 1...ConsumerSettings.ackWaitRange.upperBound,
        summary: "Redeliver after this many ms (default: at once).")
    static let error = Param<String?>.optionalString(
        "error", summary: "Why it failed (kept as the dead letter's last_error), at most 1024 characters."
    ).map { (text: String?, path: String) throws(RPCError) -> String? in
        guard let text else { return nil }
        guard text.utf8.count <= ConsumerParams.maximumErrorLength else {
            throw .invalidParams(path: path, "longer than \(ConsumerParams.maximumErrorLength) bytes")
        }
        return text
    }
    static let parameters = [
        ConsumerParams.consumer.description, seq.description, delay.description, Self.error.description,
    ]

    var consumer: String
    var seq: Int
    var delayMilliseconds: Int?
    var error: String?

    init(from params: ParamReader) throws(RPCError) {
        consumer = try params(ConsumerParams.consumer)
        seq = try params(Self.seq)
        delayMilliseconds = try params(Self.delay)
        error = try params(Self.error)
    }
}

struct ConsumerNameParams: MethodParameters {
    static let parameters = [ConsumerParams.consumer.description]
    var consumer: String
    init(from params: ParamReader) throws(RPCError) { consumer = try params(ConsumerParams.consumer) }
}

struct GetDeadLettersParams: MethodParameters {
    static let consumer = Param<String?>.optionalString("consumer", summary: "Only this consumer's dead letters.")
    static let limit = Param<Int?>.optionalInt(
        "limit", in: 1...ConsumerState.maximumDeadLetters, summary: "The oldest this many (default 100).")
    static let parameters = [consumer.description, limit.description]
    static let defaultLimit = 100

    var consumer: String?
    var limit: Int

    init(from params: ParamReader) throws(RPCError) {
        consumer = try params(Self.consumer)
        limit = try params(Self.limit) ?? Self.defaultLimit
    }
}

struct DeadLetterParams: MethodParameters {
    static let parameters = [ConsumerParams.deadLetterID.description]
    var id: Int
    init(from params: ParamReader) throws(RPCError) { id = try params(ConsumerParams.deadLetterID) }
}
