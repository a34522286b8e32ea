import Foundation
import Synchronization

/// The iteration summaries kept for daily and weekly reports (the newest `capacity`,
/// 10 000 by default). Shared by every copy of an ``AuditAgent``; thread-safe.
public final class AuditLog: Sendable {
    public let capacity: Int
    private let entries = Mutex<[IterationSummary]>([])

    public init(capacity: Int = 10_000) {
        self.capacity = max(1, capacity)
    }

    /// Appends a summary, dropping the oldest beyond ``capacity``.
    public func append(_ summary: IterationSummary) {
        entries.withLock { list in
            list.append(summary)
            if list.count > capacity { list.removeFirst(list.count - capacity) }
        }
    }

    /// All summaries held, oldest first.
    public var summaries: [IterationSummary] { entries.withLock { $0 } }

    /// Number of summaries held.
    public var count: Int { entries.withLock { $0.count } }

    /// Summaries whose timestamp satisfies `predicate`, oldest first.
    public func summaries(where predicate: (IterationSummary) -> Bool) -> [IterationSummary] {
        entries.withLock { $0.filter(predicate) }
    }

    /// Forgets everything.
    public func removeAll() { entries.withLock { $0.removeAll() } }
}
