import Foundation
import Logging

/// The continuous loop: run an iteration, sleep the interval, repeat, until stopped.
public actor PipelineLoop {
    /// What `get_status.loop` reports.
    public struct Status: Sendable {
        public var running: Bool
        public var intervalSeconds: Double
        public var iterations: Int
        public var lastIteration: IterationSummaryView?
        public var symbols: [String]?
    }

    private enum State {
        case idle
        case running(task: Task<Void, Never>, generation: Int)
    }

    private let orchestrator: any Orchestrator
    private let logger: Logger
    private var state = State.idle
    private var generation = 0
    private var intervalSeconds: Double
    private var symbols: [String]?
    private var iterations = 0
    private var lastIteration: IterationSummaryView?
    private var wakeUp: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    private var sleeps = 0

    public init(orchestrator: any Orchestrator, intervalSeconds: Double, logger: Logger) {
        self.orchestrator = orchestrator
        self.intervalSeconds = intervalSeconds
        self.logger = logger
    }

    /// Restores the loop's counters from the journal (at start, before it runs).
    public func restore(iterations: Int, lastIteration: IterationSummaryView?) {
        self.iterations = max(self.iterations, iterations)
        if let lastIteration { self.lastIteration = lastIteration }
    }

    /// Starts the loop, or, when it is running, updates its interval and symbols.
    public func start(intervalSeconds: Double? = nil, symbols: [String]? = nil) -> Status {
        if let intervalSeconds { self.intervalSeconds = intervalSeconds }
        if let symbols { self.symbols = symbols }
        if case .idle = state {
            generation += 1
            let generation = self.generation
            state = .running(task: Task { await self.runLoop(generation: generation) }, generation: generation)
            logger.info("pipeline.loop.started", metadata: ["interval.seconds": "\(self.intervalSeconds)"])
        }
        return status
    }

    /// Stops the loop; an iteration in flight finishes first (and counts).
    public func stop() async -> Status {
        guard case .running(let task, _) = state else { return status }
        state = .idle
        wakeUp?.continuation.resume()
        wakeUp = nil
        await task.value
        logger.info("pipeline.loop.stopped", metadata: ["iterations": "\(iterations)"])
        return status
    }

    public var status: Status {
        let running = if case .running = state { true } else { false }
        return Status(
            running: running, intervalSeconds: intervalSeconds, iterations: iterations, lastIteration: lastIteration,
            symbols: symbols)
    }

    private func isCurrent(_ generation: Int) -> Bool {
        if case .running(_, let g) = state, g == generation { return true }
        return false
    }

    private func runLoop(generation: Int) async {
        while isCurrent(generation) {
            do {
                var request = IterationRequest(symbols: symbols)
                request.fromLoop = true
                let result = try await orchestrator.run(request)
                lastIteration = result.summary
            } catch {
                logger.warning("pipeline.loop.iteration.failed", metadata: ["error": "\(error)"])
            }
            iterations += 1
            guard isCurrent(generation) else { return }
            await sleep(seconds: intervalSeconds)
        }
    }

    /// Sleeps the interval, or less when `stop` wakes the loop.
    private func sleep(seconds: Double) async {
        sleeps += 1
        let id = sleeps
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            wakeUp = (id, continuation)
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                self.timerFired(id: id)
            }
        }
    }

    private func timerFired(id: Int) {
        // Resume only the sleep this timer belongs to, and only if stop() has not already.
        guard let pending = wakeUp, pending.id == id else { return }
        wakeUp = nil
        pending.continuation.resume()
    }
}
