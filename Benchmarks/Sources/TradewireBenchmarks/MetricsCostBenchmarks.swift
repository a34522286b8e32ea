import CoreMetrics
import Foundation
import Prometheus
import TradewireBus

/// What `--http` adds to each publish: a stopwatch (two clock reads) and one
/// `tradewire_publish_seconds` record into a Prometheus histogram, alone and with two
/// threads recording into the same histogram at once; without `--http`, the stopwatch only
/// checks that recording is off. `make bench` sets it next to the daemon's CPU time per
/// published event (scripts/bench-http.py).
enum MetricsCostBenchmarks {
    static let calls = 2_000_000

    static func run() {
        let noop = CoreMetrics.Timer(
            label: MetricName.publishSeconds, dimensions: [], factory: NOOPMetricsHandler.instance)
        print("publish timer per publish (release, median of 5 × \(calls) calls): ns")
        print("  off (no --http):             \(String(format: "%6.1f", nanoseconds(noop, threads: 1)))")
        MetricsRecording.enable()
        let factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        let prometheus = CoreMetrics.Timer(label: MetricName.publishSeconds, dimensions: [], factory: factory)
        print("  on, 1 thread:                \(String(format: "%6.1f", nanoseconds(prometheus, threads: 1)))")
        print("  on, 2 threads at once:       \(String(format: "%6.1f", nanoseconds(prometheus, threads: 2)))")
    }

    /// Nanoseconds per call, each thread making ``calls`` calls.
    static func nanoseconds(_ timer: CoreMetrics.Timer, threads: Int) -> Double {
        median(
            (0..<5).map { _ in
                let group = DispatchGroup()
                let start = ContinuousClock.now
                for _ in 0..<threads {
                    DispatchQueue.global().async(group: group) {
                        for _ in 0..<calls { MetricsStopwatch().record(into: timer) }
                    }
                }
                group.wait()
                let elapsed = (ContinuousClock.now - start).components
                return (Double(elapsed.seconds) * 1e9 + Double(elapsed.attoseconds) / 1e9) / Double(calls)
            })
    }
}
