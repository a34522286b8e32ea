import Foundation
import TradewireJSON

/// The kill switch's position (PROTOCOL §12): what risk lets through.
public enum TradingState: String, Sendable, CaseIterable {
    /// Every rule as usual.
    case active
    /// Only orders that reduce an existing position, capped at its size.
    case reducing
    /// No order at all: every non-HOLD signal is rejected.
    case halted

    /// The value of the `tradewire_trading_state` gauge: active 0, reducing 1, halted 2.
    public var gaugeValue: Int {
        switch self {
        case .active: 0
        case .reducing: 1
        case .halted: 2
        }
    }
}

/// The trading state in force, since when and why.
///
/// JSON: `{"state", "since", "reason"}` (`since` RFC 3339 UTC).
public struct TradingStateSnapshot: Sendable, Equatable {
    public var state: TradingState
    /// When this state began (a repeated setting of the same state keeps it).
    public var since: Date
    public var reason: String

    /// The reason of the state a fresh daemon starts in.
    public static let initialReason = "initial state"

    public init(state: TradingState, since: Date, reason: String) {
        self.state = state
        self.since = since
        self.reason = reason
    }

    /// Active since `date`, as a daemon without a saved state starts.
    public static func initial(at date: Date) -> TradingStateSnapshot {
        TradingStateSnapshot(state: .active, since: date, reason: initialReason)
    }

    /// `{"state", "since", "reason"}`.
    public var jsonValue: JSONValue {
        [
            "state": JSONValue(state.rawValue), "since": JSONValue(RFC3339.string(from: since)),
            "reason": JSONValue(reason),
        ]
    }

    /// Reads ``jsonValue``.
    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        let name = try r.string("state")
        guard let state = TradingState(rawValue: name) else {
            throw JSONDecodingError(path: r.pointer("state"), message: "unknown trading state \"\(name)\"")
        }
        self.init(state: state, since: try r.date("since"), reason: try r.string("reason"))
    }

    /// The rejection reason of a signal this state forbids (nil when active).
    public var rejectionReason: String? {
        switch state {
        case .active: nil
        case .reducing: "trading reducing: \(reason)"
        case .halted: "trading halted: \(reason)"
        }
    }
}

/// One setting of the trading state: what it was and what it is now.
public struct TradingStateChange: Sendable, Equatable {
    /// Who set it (`trading_state_changed.by`).
    public enum Origin: String, Sendable {
        /// `set_trading_state` (the CLI's halt, reduce and resume).
        case `operator`
        /// A halt trigger (`--halt-on-drawdown`, `--halt-on-errors`).
        case trigger
    }

    public var previous: TradingStateSnapshot
    public var current: TradingStateSnapshot

    public init(previous: TradingStateSnapshot, current: TradingStateSnapshot) {
        self.previous = previous
        self.current = current
    }
}
