import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJSON
import TradewireTrading

/// Changes the trading state (PROTOCOL §12) for the operator and for the halt triggers, and
/// makes every change count: the agents' ``TradingSwitch`` takes it at once, the journal
/// state document ``stateKey`` keeps it (with the triggers' ``HaltWatch``) so it survives a
/// restart or a kill, and `trading_state_changed` announces it on the bus (so it is
/// journaled too).
///
/// Every setting by the operator is announced, also one that repeats the state in force
/// (its `previous` equals its `state`; the reason is replaced and `since` kept). A trigger
/// only ever halts, and never while already halted.
///
/// After an operator's change to active the triggers start over: no errors in a row, and
/// the drawdown's peak is the equity of that moment (the loss so far is accepted).
public final class TradingStateController: Sendable {
    /// The journal state document: `{"version": 1, "state", "since", "reason",
    /// "peak_equity": number|null, "errors_in_a_row"}`.
    public static let stateKey = "trading_state"
    /// The event each change publishes: `{"state", "previous", "reason", "by", "since"}`.
    public static let changedEventType = "trading_state_changed"
    /// The longest reason accepted, in characters.
    public static let maximumReasonLength = 1024

    public let tradingSwitch: TradingSwitch
    public let triggers: HaltTriggers
    private let bus: EventBus
    private let journal: (any EventJournal)?
    private let broker: PaperBroker
    private let clock: @Sendable () -> Date
    private let logger: Logger
    /// Held while a change is applied, saved and published, so that the saved document and
    /// the events follow the switch's order.
    private let watch = Mutex(HaltWatch())

    public init(
        agents: TradingAgents, bus: EventBus, journal: (any EventJournal)?, triggers: HaltTriggers = HaltTriggers(),
        clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "tradewire.pipeline")
    ) {
        self.tradingSwitch = agents.tradingSwitch
        self.broker = agents.broker
        self.bus = bus
        self.journal = journal
        self.triggers = triggers
        self.clock = clock
        self.logger = logger
    }

    /// What the triggers remember now.
    public var haltWatch: HaltWatch { watch.withLock { $0 } }

    /// Sets the trading state: in force for the next risk decision when this returns, saved,
    /// and its `trading_state_changed` delivered.
    @discardableResult
    public func set(_ state: TradingState, reason: String, by origin: TradingStateChange.Origin) async
        -> TradingStateChange
    {
        let resumes = origin == .operator && state == .active
        let equity = resumes && triggers.drawdownPercent != nil ? await broker.account().equity.dollars : nil
        let (change, published) = watch.withLock { watch in
            let change = tradingSwitch.set(state, reason: reason, at: clock())
            if resumes && change.previous.state != .active { watch.rebaseline(equity: equity) }
            return (change, keep(change, watch: watch, by: origin))
        }
        await published.handlersFinished()
        return change
    }

    /// Takes a finished iteration into account (dry runs and replays are not counted): a
    /// trigger that fires halts trading before the iteration's caller hears of it.
    ///
    /// - Parameter firstError: the iteration's first error (a failed or timed-out iteration
    ///   has one); nil when it had none.
    func iterationFinished(firstError: String?) async {
        guard !triggers.isEmpty else { return }
        let equity = triggers.drawdownPercent == nil ? nil : await broker.account().equity.dollars
        let published: PublishedEvent? = watch.withLock { watch in
            let before = watch
            guard let reason = watch.observe(equity: equity, firstError: firstError, triggers: triggers),
                tradingSwitch.current.state != .halted
            else {
                if watch != before { save(tradingSwitch.current, watch) }
                return nil
            }
            let change = tradingSwitch.set(.halted, reason: reason, at: clock())
            return keep(change, watch: watch, by: .trigger)
        }
        await published?.handlersFinished()
    }

    /// Saves and announces a change (under the lock).
    private func keep(_ change: TradingStateChange, watch: HaltWatch, by origin: TradingStateChange.Origin)
        -> PublishedEvent
    {
        // Saved before it is announced: a kill in between leaves the state kept, if not its event.
        save(change.current, watch)
        logger.notice(
            "pipeline.trading_state.changed",
            metadata: [
                "trading_state": "\(change.current.state.rawValue)",
                "trading_state.previous": "\(change.previous.state.rawValue)",
                "trading_state.reason": "\(change.current.reason)", "trading_state.by": "\(origin.rawValue)",
            ])
        let data: JSONValue = [
            "state": JSONValue(change.current.state.rawValue), "previous": JSONValue(change.previous.state.rawValue),
            "reason": JSONValue(change.current.reason), "by": JSONValue(origin.rawValue),
            "since": JSONValue(RFC3339.string(from: change.current.since)),
        ]
        return bus.publishRecording(Self.changedEventType, payload: data)
    }

    private func save(_ snapshot: TradingStateSnapshot, _ watch: HaltWatch) {
        guard let journal else { return }
        let document: JSONValue = [
            "version": 1, "state": JSONValue(snapshot.state.rawValue),
            "since": JSONValue(RFC3339.string(from: snapshot.since)), "reason": JSONValue(snapshot.reason),
            "peak_equity": watch.peakEquity.map { JSONValue($0) } ?? .null,
            "errors_in_a_row": JSONValue(watch.errorsInARow),
        ]
        do {
            try journal.saveState(Self.stateKey, JSONWriter.encode(document))
        } catch {
            // The state is in force all the same; the next start would see the previous one.
            logger.error("journal.state.save_failed", metadata: ["key": "\(Self.stateKey)", "error": "\(error)"])
        }
    }

    /// Puts back the journaled trading state and the triggers' memory (at start, after
    /// recovery, before anything runs). Without a saved document, `recovered` (the state the
    /// journal's `trading_state_changed` events left, see ``JournalFold/tradingState``) is
    /// used; without either the switch stays as it is.
    ///
    /// - Returns: the state in force afterwards.
    @discardableResult
    public func restore(recovered: TradingStateSnapshot? = nil) -> TradingStateSnapshot {
        var saved: (TradingStateSnapshot, HaltWatch)?
        if let journal {
            do {
                if let bytes = try journal.loadState(Self.stateKey) {
                    saved = try Self.decode(try JSONParser.parse(bytes))
                }
            } catch {
                logger.error("journal.state.unreadable", metadata: ["key": "\(Self.stateKey)", "error": "\(error)"])
            }
        }
        watch.withLock { watch in
            if let (snapshot, remembered) = saved {
                tradingSwitch.restore(snapshot)
                watch = remembered
            } else if let recovered {
                tradingSwitch.restore(recovered)
            }
        }
        let current = tradingSwitch.current
        if current.state != .active {
            logger.warning(
                "pipeline.trading_state.restored",
                metadata: ["trading_state": "\(current.state.rawValue)", "trading_state.reason": "\(current.reason)"])
        }
        return current
    }

    private static func decode(_ json: JSONValue) throws -> (TradingStateSnapshot, HaltWatch) {
        let r = try JSONObjectReader(json, path: "")
        guard try r.int("version") == 1 else {
            throw JSONDecodingError(path: "/version", message: "unknown trading state version")
        }
        let snapshot = try TradingStateSnapshot(json: json, path: "")
        let peak = try r.optionalDouble("peak_equity")
        return (snapshot, HaltWatch(peakEquity: peak, errorsInARow: max(0, try r.optionalInt("errors_in_a_row") ?? 0)))
    }
}
