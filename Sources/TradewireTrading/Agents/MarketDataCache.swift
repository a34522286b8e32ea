import Foundation
import Synchronization

/// A TTL cache of fetched market data keyed by (symbol, bars, UTC day), bounded in size
/// (oldest insertions evicted first). Thread-safe; shared by every copy of a ``DataAgent``.
///
/// Insertions are kept in a FIFO queue next to the map, so a store is amortised O(1): once
/// the cache is full, each store evicts from the queue's front (expired entries are always
/// the oldest) instead of scanning the map.
public final class MarketDataCache: Sendable {
    struct Key: Hashable {
        var symbol: String
        var bars: Int
        var day: Int64
    }

    private struct Entry {
        var data: MarketData
        var stored: ContinuousClock.Instant
        /// Matches the entry's slot in the queue; older slots for the same key are stale.
        var sequence: UInt64
    }

    private struct Slot {
        var key: Key
        var sequence: UInt64
    }

    private struct State {
        var map: [Key: Entry] = [:]
        /// Insertion order, oldest first from `head`. A slot whose sequence no longer matches
        /// the map's entry (replaced, expired or evicted) is stale and skipped.
        var queue: [Slot] = []
        var head = 0
        var nextSequence: UInt64 = 0

        /// Removes the oldest live entry, skipping stale slots; false when none is left.
        mutating func evictOldest() -> Bool {
            while head < queue.count {
                let slot = queue[head]
                head += 1
                if map[slot.key]?.sequence == slot.sequence {
                    map[slot.key] = nil
                    return true
                }
            }
            return false
        }

        /// Drops the queue's consumed prefix and, when stale slots outnumber live ones, the
        /// stale slots; both only after a linear number of pushes, so amortised O(1).
        mutating func compact() {
            if head > 0, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            if queue.count - head > 2 * map.count + 32 {
                let live = queue[head...].filter { map[$0.key]?.sequence == $0.sequence }
                queue = live
                head = 0
            }
        }
    }

    public let ttlSeconds: Double
    public let maxEntries: Int
    private let state = Mutex(State())

    /// `ttlSeconds` ≤ 0 disables caching.
    public init(ttlSeconds: Double, maxEntries: Int = 1000) {
        self.ttlSeconds = ttlSeconds
        self.maxEntries = max(1, maxEntries)
    }

    private var ttl: Duration { .milliseconds(Int64(min(ttlSeconds, 1e12) * 1000)) }

    func value(for key: Key) -> MarketData? {
        guard ttlSeconds > 0 else { return nil }
        let ttl = self.ttl
        return state.withLock { s -> MarketData? in
            guard let entry = s.map[key] else { return nil }
            guard ContinuousClock.now - entry.stored < ttl else {
                s.map[key] = nil
                s.compact()
                return nil
            }
            return entry.data
        }
    }

    /// Stores `data`, then evicts the oldest entries (expired ones first, as they are the
    /// oldest) until at most ``maxEntries`` remain. Amortised O(1).
    func store(_ data: MarketData, for key: Key) {
        guard ttlSeconds > 0 else { return }
        let ttl = self.ttl
        let limit = maxEntries
        state.withLock { s in
            // Read the clock under the lock so that queue order is also time order.
            let now = ContinuousClock.now
            s.nextSequence += 1
            s.map[key] = Entry(data: data, stored: now, sequence: s.nextSequence)
            s.queue.append(Slot(key: key, sequence: s.nextSequence))
            while s.map.count > limit, s.evictOldest() {}
            // Expired entries at the front go too (they would be refused anyway).
            while s.head < s.queue.count {
                let slot = s.queue[s.head]
                if let entry = s.map[slot.key], entry.sequence == slot.sequence {
                    guard now - entry.stored >= ttl else { break }
                    s.map[slot.key] = nil
                }
                s.head += 1
            }
            s.compact()
        }
    }

    /// Entries currently held (expired ones included until they are touched or a store
    /// reaches them).
    public var count: Int { state.withLock { $0.map.count } }

    /// Forgets everything.
    public func removeAll() { state.withLock { $0 = State() } }
}
