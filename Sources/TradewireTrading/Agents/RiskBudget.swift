import Foundation
import Synchronization

/// Risk committed per UTC trading day (the original's `_current_daily_loss`, fixed to reset
/// when the day changes). Shared by every copy of a ``RiskAgent``; thread-safe.
public final class RiskBudget: Sendable {
    private struct State {
        var day: Int64 = .min
        var committed = 0.0
    }

    private let state = Mutex(State())

    public init() {}

    /// The UTC day number of a date (days since 1970-01-01).
    public static func utcDay(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// Dollars committed on the UTC day of `date` (0 once the day has changed).
    public func committed(on date: Date) -> Double {
        let day = Self.utcDay(date)
        return state.withLock { $0.day == day ? $0.committed : 0 }
    }

    /// Adds `amount` to the day's total unconditionally (starting a new day if needed).
    public func commit(_ amount: Double, on date: Date) {
        let day = Self.utcDay(date)
        state.withLock { s in
            if s.day != day {
                s.day = day
                s.committed = 0
            }
            s.committed += amount
        }
    }

    /// Atomically adds `amount` if the day's total stays within `limit`.
    ///
    /// - Returns: whether it was added, and the day's total before the attempt.
    public func reserve(_ amount: Double, limit: Double, on date: Date) -> (accepted: Bool, committedBefore: Double) {
        let day = Self.utcDay(date)
        return state.withLock { s -> (Bool, Double) in
            if s.day != day {
                s.day = day
                s.committed = 0
            }
            let before = s.committed
            guard before + amount <= limit else { return (false, before) }
            s.committed += amount
            return (true, before)
        }
    }

    /// Gives back `amount` committed on the UTC day of `date` (an order the broker refused),
    /// never going below zero. Nothing happens once that day is over (its budget is gone),
    /// or for an amount that is not a positive finite number.
    public func release(_ amount: Double, on date: Date) {
        guard amount.isFinite, amount > 0 else { return }
        let day = Self.utcDay(date)
        state.withLock { s in
            guard s.day == day else { return }
            s.committed = max(0, s.committed - amount)
        }
    }

    /// The day number and total held now (for tests and checkpoints).
    public var current: (day: Int64?, committed: Double) {
        state.withLock { ($0.day == .min ? nil : $0.day, $0.committed) }
    }

    /// Replaces the total with a recovered one (at start, before any approval).
    public func restore(day: Int64?, committed: Double) {
        state.withLock { $0 = State(day: day ?? .min, committed: committed.isFinite ? max(0, committed) : 0) }
    }

    /// Forgets everything committed (the original's `reset_daily_loss`).
    public func reset() {
        state.withLock { $0 = State() }
    }
}
