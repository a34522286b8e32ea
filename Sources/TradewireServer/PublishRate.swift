import Synchronization
import TradewireJSON

/// `--publish-rate N[/BURST]` (PROTOCOL §12): how many publishes per second one connection
/// may make, and how many it may make at once after a pause.
public struct PublishRate: Sendable, Equatable, CustomStringConvertible {
    /// Highest rate accepted (publishes per second).
    public static let maximumRate = 1e9
    /// Largest burst accepted.
    public static let maximumBurst = 1_000_000_000

    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Reads `N` or `N/BURST`: N a positive number up to ``maximumRate``, BURST a whole number
    /// from 1 to ``maximumBurst`` (default: N rounded up, so a second's worth at once).
    ///
    /// - Returns: the rate, or the reason the text is not one.
    public static func parse(_ text: String) -> Result<PublishRate, PublishRateError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let rate = Double(parts[0]), rate.isFinite, rate > 0, rate <= maximumRate else {
            return .failure(PublishRateError(text: text))
        }
        var burst = Int(rate.rounded(.up))
        if parts.count == 2 {
            guard let given = Int(parts[1]), (1...maximumBurst).contains(given) else {
                return .failure(PublishRateError(text: text))
            }
            burst = given
        }
        return .success(PublishRate(perSecond: rate, burst: max(1, burst)))
    }

    public var description: String { "\(perSecond)/\(burst)" }
}

/// A `--publish-rate` value that is not one.
public struct PublishRateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var text: String
    public var description: String {
        "--publish-rate must be N or N/BURST (N publishes per second, 0 < N ≤ 1e9; BURST a whole number 1...1000000000), got \"\(text)\""
    }
}

/// A token bucket: ``PublishRate/burst`` tokens, refilled at ``PublishRate/perSecond``.
final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
    }

    let rate: PublishRate
    private let state: Mutex<State>

    init(rate: PublishRate, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.state = Mutex(State(tokens: Double(rate.burst), refilledAt: now))
    }

    /// Takes one token: nil when taken, else how long until one is there (nothing taken).
    func take(now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { s in
            s.tokens = min(Double(rate.burst), s.tokens + max(0, (now - s.refilledAt).inSeconds) * rate.perSecond)
            s.refilledAt = now
            if s.tokens >= 1 {
                s.tokens -= 1
                return nil
            }
            return .seconds((1 - s.tokens) / rate.perSecond)
        }
    }
}
