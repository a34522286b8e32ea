/// How the read-only HTTP side behaves (PROTOCOL §12).
public struct HTTPConfiguration: Sendable {
    public var address: HTTPAddress
    /// Server-Sent Event streams served at once; one more gets 503.
    public var maximumEventStreams = 256
    /// Bytes of events one stream may hold before it is closed as too far behind (its client
    /// reconnects with `Last-Event-ID` and resumes from the journal).
    public var streamBudgetBytes = 8 << 20
    /// How often an idle stream sends a `: keep-alive` comment.
    public var keepAliveInterval: Duration = .seconds(15)
    /// How long an idle keep-alive connection stays open between requests.
    public var idleTimeout: Duration = .seconds(60)

    public init(address: HTTPAddress) {
        self.address = address
    }
}
