import Foundation
import Synchronization

/// The kill switch (PROTOCOL §12): the trading state every risk decision reads. Shared by
/// every copy of the agents; thread-safe.
///
/// It only holds the state: who may change it, and how a change is announced and kept
/// across restarts, is the pipeline's business.
public final class TradingSwitch: Sendable {
    private let state: Mutex<TradingStateSnapshot>

    /// A switch in `initial` (by default: active since now).
    public init(_ initial: TradingStateSnapshot = .initial(at: Date())) {
        state = Mutex(initial)
    }

    /// The state in force now.
    public var current: TradingStateSnapshot { state.withLock { $0 } }

    /// Sets the state. Setting the state already in force keeps its `since` and takes the new
    /// reason.
    @discardableResult
    public func set(_ next: TradingState, reason: String, at date: Date) -> TradingStateChange {
        state.withLock { snapshot in
            let previous = snapshot
            snapshot = TradingStateSnapshot(
                state: next, since: previous.state == next ? previous.since : date, reason: reason)
            return TradingStateChange(previous: previous, current: snapshot)
        }
    }

    /// Puts back a saved state as it was (at start).
    public func restore(_ snapshot: TradingStateSnapshot) {
        state.withLock { $0 = snapshot }
    }
}
