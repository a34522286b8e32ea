import CoreMetrics
import Prometheus
import TradewireBus

/// The daemon's swift-metrics backend: a Prometheus registry in which each of the daemon's
/// metrics (``MetricName``) gets its help text and buckets suited to what it measures.
///
/// `PrometheusMetricsFactory` would register every metric without help text; this factory
/// goes through the registry's descriptor API instead, so `/metrics` has a `# HELP` line for
/// each family.
public struct TradewireMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Bootstraps the process's metrics system with a new registry, turns recording on
    /// (``MetricsRecording``) and returns the registry. Call once, before anything records a
    /// metric (only `tradewired --http` does).
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(TradewireMetricsFactory(registry: registry))
        MetricsRecording.enable()
        return registry
    }

    /// The help text of each of the daemon's metrics.
    static let help: [String: String] = [
        MetricName.eventsPublished: "Events published since the daemon started, by event type.",
        MetricName.eventsDelivered: "Event deliveries to subscriptions (clients and in-process handlers).",
        MetricName.eventsDropped: "Events dropped for slow socket subscribers (outbound budget exceeded).",
        MetricName.publishSeconds: "Time from a publish request to its receipt (journal commit and handlers included).",
        MetricName.stageSeconds: "Time each pipeline stage took, handlers included.",
        MetricName.stageCalls: "Remote stage handler calls, by stage, group name and outcome.",
        MetricName.connections: "Socket connections served now.",
        MetricName.journalCommitSeconds: "Time one journal append (a batch's transaction) took.",
        MetricName.iterations: "Pipeline iterations since the daemon started, by outcome.",
        MetricName.equity: "The paper account's equity (cash plus positions at their last mark), in dollars.",
        MetricName.tradingState: "Trading state: 0 active, 1 reducing, 2 halted.",
        MetricName.eventStreams: "HTTP Server-Sent Event streams open now.",
        MetricName.consumerPending: "Events a durable consumer has out and not acknowledged, by consumer.",
        MetricName.consumerLag: "The newest seq minus a durable consumer's position, by consumer.",
        MetricName.consumerDeadLetters: "Dead letters a durable consumer holds, by consumer.",
        MetricName.clusterLag: "Events in the cluster's shared journal this node has not delivered yet.",
        MetricName.clusterLeader: "1 while this node leads the cluster, else 0.",
        MetricName.clusterEpoch: "The cluster's leader epoch as this node last saw it.",
        MetricName.clusterConnected: "1 while this node reaches the cluster database, else 0.",
        MetricName.clusterNodes: "Live nodes of the cluster (seen within 6 s).",
    ]

    /// Histogram buckets, in seconds, per metric: publishes and commits take microseconds to
    /// milliseconds, stages milliseconds to seconds.
    static let buckets: [String: [Duration]] = [
        MetricName.publishSeconds: microseconds([
            10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
        ]),
        MetricName.journalCommitSeconds: microseconds([
            50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
        ]),
        MetricName.stageSeconds: microseconds([
            100, 500, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
            5_000_000, 10_000_000, 30_000_000, 60_000_000,
        ]),
    ]

    private static func microseconds(_ values: [Int64]) -> [Duration] { values.map { .microseconds($0) } }

    /// Prometheus' own default buckets, for a timer this table does not know.
    static let defaultBuckets: [Duration] = microseconds([
        5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
    ])

    static func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)])
        -> any FloatingPointCounterHandler
    {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(
            descriptor: Self.descriptor(label), labels: dimensions,
            buckets: [0.001, 0.01, 0.1, 1, 10, 100, 1_000, 10_000])
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: Self.descriptor(label), labels: dimensions, buckets: Self.buckets[label] ?? Self.defaultBuckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
