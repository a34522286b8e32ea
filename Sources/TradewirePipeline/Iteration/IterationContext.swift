import Foundation
import Synchronization
import TradewireJSON
import TradewireTrading

/// Everything one iteration has produced so far. Shared by the stages; in the
/// event-driven orchestrator it travels with each pipeline event in its
/// ``PipelineEnvelope``, so concurrent iterations never mix.
final class IterationContext: Sendable {
    enum Outcome: Sendable {
        case completed(IterationResult)
        case noMarketData([StageError])
        case timedOut(PipelineStage)
    }

    struct Progress: Sendable {
        var symbols: [String] = []
        var marketData: [String: MarketData] = [:]
        var signals: [TradingSignal] = []
        var validated: [TradingSignal] = []
        var approved: [TradingSignal] = []
        var rejected: [TradingSignal] = []
        var executions: [ExecutionResult] = []
        var errors: [StageError] = []
        var lastStage: PipelineStage = .none
        var abandoned = false
        /// Handler calls, in call order.
        var handlers: [HandlerCallRecord] = []
    }

    let number: Int
    let id: String
    let request: IterationRequest
    let startedAt: ContinuousClock.Instant
    /// The "as of" time for market data and the trading day of the risk budget.
    let asOf: Date
    /// When the iteration is abandoned (every handler call's deadline is at most this).
    let deadline: ContinuousClock.Instant
    /// `deadline` on the wall clock.
    let deadlineDate: Date
    let progress: Mutex<Progress>
    let outcome = OneShot<Outcome>()

    init(number: Int, id: String, request: IterationRequest, asOf: Date, timeout: Duration) {
        self.number = number
        self.id = id
        self.request = request
        self.asOf = asOf
        self.startedAt = .now
        self.deadline = startedAt.advanced(by: timeout)
        self.deadlineDate = Date().addingTimeInterval(timeout.inSeconds)
        self.progress = Mutex(Progress())
    }

    var elapsedSeconds: Double {
        (ContinuousClock.now - startedAt).inSeconds
    }

    /// True once the deadline passed: later stages must not act (no trade after a timeout).
    var isAbandoned: Bool { progress.withLock { $0.abandoned } }

    func update(_ body: (inout Progress) -> Void) { progress.withLock { body(&$0) } }

    func finished(_ stage: PipelineStage) { progress.withLock { $0.lastStage = max($0.lastStage, stage) } }

    func record(_ errors: [StageError]) {
        guard !errors.isEmpty else { return }
        progress.withLock { $0.errors.append(contentsOf: errors) }
    }
}
