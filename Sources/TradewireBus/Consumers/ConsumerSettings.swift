/// What a durable consumer is, fixed when it is created (PROTOCOL §11): its name, the
/// pattern it reads, and how it redelivers.
public struct ConsumerSettings: Sendable, Equatable {
    public static let defaultAckWaitMilliseconds = 30_000
    public static let defaultMaxDeliver = 5
    public static let defaultMaxInFlight = 256
    /// Bounds of the options a client may give.
    public static let ackWaitRange = 1...86_400_000
    public static let maxDeliverRange = 1...1000
    public static let maxInFlightRange = 1...10_000
    /// Longest consumer name.
    public static let maximumNameLength = 64

    public let name: String
    public let pattern: EventPattern
    public let ackWaitMilliseconds: Int
    public let maxDeliver: Int
    public let maxInFlight: Int

    public init(
        name: String, pattern: EventPattern, ackWaitMilliseconds: Int = Self.defaultAckWaitMilliseconds,
        maxDeliver: Int = Self.defaultMaxDeliver, maxInFlight: Int = Self.defaultMaxInFlight
    ) {
        self.name = name
        self.pattern = pattern
        self.ackWaitMilliseconds = ackWaitMilliseconds
        self.maxDeliver = maxDeliver
        self.maxInFlight = maxInFlight
    }

    public var ackWait: Duration { .milliseconds(ackWaitMilliseconds) }

    /// A consumer name: 1–64 characters of the event-type alphabet.
    public static func validateName(_ name: String) throws(EventName.ValidationError) {
        let utf8 = name.utf8
        guard !utf8.isEmpty else { throw EventName.ValidationError(description: "consumer name is empty") }
        guard utf8.count <= maximumNameLength else {
            throw EventName.ValidationError(description: "consumer name longer than \(maximumNameLength) characters")
        }
        guard utf8.allSatisfy(EventName.isNameByte) else {
            throw EventName.ValidationError(
                description: "consumer name may hold only A-Z a-z 0-9 _ . : - (got \"\(name)\")")
        }
    }
}
