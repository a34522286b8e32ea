import CoreMetrics
import Synchronization

/// Whether the daemon's histograms are recorded: `tradewired --http` turns it on when it
/// bootstraps its metrics system. Until then a timed path does not even read the clock.
public enum MetricsRecording {
    private static let enabled = Atomic(false)

    public static var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Turns recording on (for good): call after bootstrapping the metrics system.
    public static func enable() { enabled.store(true, ordering: .relaxed) }
}

/// A start time, taken only while metrics are recorded (``MetricsRecording``).
public struct MetricsStopwatch: Sendable {
    private let start: ContinuousClock.Instant?

    public init() {
        start = MetricsRecording.isEnabled ? .now : nil
    }

    /// Records the time since the start into `timer` (nothing while metrics are off).
    public func record(into timer: CoreMetrics.Timer) {
        if let start { timer.record(ContinuousClock.now - start) }
    }
}

extension CoreMetrics.Timer {
    /// Records a duration.
    public func record(_ duration: Duration) {
        let components = duration.components
        recordNanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
