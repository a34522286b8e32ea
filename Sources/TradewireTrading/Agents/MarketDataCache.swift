import Foundation
import Synchronization

/// A TTL cache of fetched market data keyed by (symbol, bars, UTC day), bounded in size
/// (oldest insertions evicted first). Thread-safe; shared by every copy of a ``DataAgent``.
public final class MarketDataCache: Sendable {
    struct Key: Hashable {
        var symbol: String
        var bars: Int
        var day: Int64
    }

    private struct Entry {
        var data: MarketData
        var stored: ContinuousClock.Instant
    }

    public let ttlSeconds: Double
    public let maxEntries: Int
    private let entries = Mutex<[Key: Entry]>([:])

    /// `ttlSeconds` ≤ 0 disables caching.
    public init(ttlSeconds: Double, maxEntries: Int = 1000) {
        self.ttlSeconds = ttlSeconds
        self.maxEntries = max(1, maxEntries)
    }

    private var ttl: Duration { .milliseconds(Int64(min(ttlSeconds, 1e12) * 1000)) }

    func value(for key: Key) -> MarketData? {
        guard ttlSeconds > 0 else { return nil }
        let now = ContinuousClock.now
        let ttl = self.ttl
        return entries.withLock { map -> MarketData? in
            guard let entry = map[key] else { return nil }
            guard now - entry.stored < ttl else {
                map[key] = nil
                return nil
            }
            return entry.data
        }
    }

    func store(_ data: MarketData, for key: Key) {
        guard ttlSeconds > 0 else { return }
        let now = ContinuousClock.now
        let ttl = self.ttl
        let limit = maxEntries
        entries.withLock { map in
            map[key] = Entry(data: data, stored: now)
            guard map.count > limit else { return }
            // Drop expired entries first, then the oldest until within the limit.
            map = map.filter { now - $0.value.stored < ttl }
            if map.count > limit {
                let oldest = map.sorted { $0.value.stored < $1.value.stored }.prefix(map.count - limit)
                for (k, _) in oldest { map[k] = nil }
            }
        }
    }

    /// Entries currently held (expired ones included until they are touched).
    public var count: Int { entries.withLock { $0.count } }

    /// Forgets everything.
    public func removeAll() { entries.withLock { $0.removeAll() } }
}
