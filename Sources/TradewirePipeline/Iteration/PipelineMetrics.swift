import DequeModule
import Synchronization
import TradewireJSON

/// Run counters and per-stage latency percentiles for `get_stats.pipeline`.
public final class PipelineMetrics: Sendable {
    /// Latency samples kept per stage for the percentiles.
    public static let samplesPerStage = 1024

    private struct State {
        var runs = 0
        var failures = 0
        var timeouts = 0
        var lastDurationSeconds: Double?
        var stageSamples: [PipelineStage: Deque<Double>] = [:]
        var stageCounts: [PipelineStage: Int] = [:]
    }
    private let state = Mutex(State())
    /// The last iterations as they ended (the dashboard's iteration detail).
    public let recentIterations = RecentIterations()

    public init() {}

    func recordStage(_ stage: PipelineStage, seconds: Double) {
        state.withLock { state in
            state.stageCounts[stage, default: 0] += 1
            var samples = state.stageSamples[stage] ?? []
            if samples.count == Self.samplesPerStage { samples.removeFirst() }
            samples.append(seconds)
            state.stageSamples[stage] = samples
        }
    }

    func recordRun(durationSeconds: Double) {
        state.withLock {
            $0.runs += 1
            $0.lastDurationSeconds = durationSeconds
        }
    }

    func recordFailure() { state.withLock { $0.failures += 1 } }
    func recordTimeout() { state.withLock { $0.timeouts += 1 } }

    /// A snapshot as a JSON object: `runs, failures, timeouts, last_duration_seconds,
    /// stages: {stage: {count, p50_ms, p99_ms}}`.
    public func snapshot() -> JSONValue {
        state.withLock { state in
            var stages = JSONObject()
            for stage in PipelineStage.working {
                let samples = (state.stageSamples[stage] ?? []).sorted()
                stages[stage.rawValue] = [
                    "count": JSONValue(state.stageCounts[stage] ?? 0),
                    "p50_ms": Self.percentile(samples, 0.50).map { JSONValue($0 * 1000) } ?? .null,
                    "p99_ms": Self.percentile(samples, 0.99).map { JSONValue($0 * 1000) } ?? .null,
                ]
            }
            return [
                "runs": JSONValue(state.runs),
                "failures": JSONValue(state.failures),
                "timeouts": JSONValue(state.timeouts),
                "last_duration_seconds": state.lastDurationSeconds.map { JSONValue($0) } ?? .null,
                "stages": .object(stages),
            ]
        }
    }

    public var runs: Int { state.withLock { $0.runs } }

    /// Iterations by outcome, over the daemon's life: `completed`, `no_market_data`, `timeout`
    /// (`tradewire_iterations_total`).
    public var outcomes: [(outcome: String, count: Int)] {
        state.withLock { [("completed", $0.runs), ("no_market_data", $0.failures), ("timeout", $0.timeouts)] }
    }

    /// Nearest-rank percentile of sorted samples.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
