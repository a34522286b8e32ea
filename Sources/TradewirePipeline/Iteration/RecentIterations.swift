import DequeModule
import Foundation
import Synchronization

/// The last iterations this process ran, as they ended: a completed one with its
/// `run_pipeline` result (market data left out), one without market data with its errors, one
/// past its deadline with the last stage it reached.
///
/// The journal keeps every signal, validation, approval and fill of an iteration, but not the
/// risk stage's rejection reasons nor the text of its errors: the HTTP dashboard reads those
/// here, for as many iterations as this ring holds.
public final class RecentIterations: Sendable {
    /// How an iteration ended.
    public enum Outcome: Sendable, Equatable {
        case completed(IterationResult)
        case noMarketData([StageError])
        case timedOut(PipelineStage)
    }

    /// One ended iteration.
    public struct Entry: Sendable, Equatable {
        public var number: Int
        public var id: String
        public var symbols: [String]
        public var dryRun: Bool
        public var finishedAt: Date
        public var durationSeconds: Double
        public var outcome: Outcome
    }

    /// Iterations kept by default (each without its market data: a few kilobytes).
    public static let defaultCapacity = 200

    public let capacity: Int
    private let entries = Mutex(Deque<Entry>())

    public init(capacity: Int = defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    func record(_ context: IterationContext, _ outcome: IterationContext.Outcome) {
        let kept: Outcome
        switch outcome {
        case .completed(var result):
            result.marketData = [:]
            kept = .completed(result)
        case .noMarketData(let errors): kept = .noMarketData(errors)
        case .timedOut(let stage): kept = .timedOut(stage)
        }
        let entry = Entry(
            number: context.number, id: context.id, symbols: context.progress.withLock { $0.symbols },
            dryRun: context.request.dryRun, finishedAt: Date(), durationSeconds: context.elapsedSeconds, outcome: kept)
        entries.withLock { entries in
            if entries.count == capacity { entries.removeFirst() }
            entries.append(entry)
        }
    }

    /// The iteration `id`, while the ring holds it.
    public func entry(id: String) -> Entry? {
        entries.withLock { entries in entries.last { $0.id == id } }
    }

    /// The newest `limit` iterations, newest first.
    public func newest(_ limit: Int) -> [Entry] {
        entries.withLock { entries in Array(entries.suffix(max(0, limit)).reversed()) }
    }
}
