import Prometheus
import Synchronization
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireServer
import TradewireTrading

/// `/metrics`: brings the counters the daemon already keeps (the bus's statistics, the
/// connection registry, the pipeline's run counts, the broker's account) up to date in the
/// registry, then renders it in the Prometheus text format. Reading them at scrape time
/// keeps them off the publish path; histograms are recorded where the time is spent.
final class MetricsCollector: Sendable {
    let registry: PrometheusCollectorRegistry
    private let daemon: Daemon
    private let tradingState: @Sendable () -> Int
    private let streams: EventStreams
    /// The value each counter was last brought to, by name and labels.
    private let seen = Mutex<[String: Int]>([:])
    /// The consumers whose gauges are registered (a deleted consumer's series are removed).
    private let consumerGauges = Mutex<[String: [Prometheus.Gauge]]>([:])

    init(
        registry: PrometheusCollectorRegistry, daemon: Daemon, tradingState: @escaping @Sendable () -> Int,
        streams: EventStreams
    ) {
        self.registry = registry
        self.daemon = daemon
        self.tradingState = tradingState
        self.streams = streams
        // Families whose series exist from the start (the others appear with their first label).
        for name in [MetricName.publishSeconds, MetricName.journalCommitSeconds] {
            _ = histogram(name, [])
        }
        for stage in PipelineStage.working { _ = histogram(MetricName.stageSeconds, [("stage", stage.rawValue)]) }
        for name in [MetricName.eventsDelivered, MetricName.eventsDropped] { _ = counter(name, []) }
    }

    /// The registry's family for a histogram the daemon records through swift-metrics (the
    /// same help and buckets, so the factory later finds it).
    private func histogram(_ name: String, _ labels: [(String, String)]) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: TradewireMetricsFactory.descriptor(name), labels: labels,
            buckets: TradewireMetricsFactory.buckets[name] ?? TradewireMetricsFactory.defaultBuckets)
    }

    private func counter(_ name: String, _ labels: [(String, String)]) -> Prometheus.Counter {
        registry.makeCounter(descriptor: TradewireMetricsFactory.descriptor(name), labels: labels)
    }

    private func gauge(_ name: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: TradewireMetricsFactory.descriptor(name), labels: labels)
    }

    /// Each durable consumer's pending, lag and dead letters (PROTOCOL §11's `get_consumers`,
    /// on a cluster node the cluster's; while its database cannot be reached the gauges keep
    /// their last values).
    private func collectConsumers() async {
        guard let rows = try? await daemon.consumerList() else { return }
        consumerGauges.withLock { registered in
            var current: [String: [Prometheus.Gauge]] = [:]
            for row in rows {
                guard let name = row["consumer"]?.stringValue else { continue }
                let labels = [("consumer", name)]
                let gauges = [
                    gauge(MetricName.consumerPending, labels), gauge(MetricName.consumerLag, labels),
                    gauge(MetricName.consumerDeadLetters, labels),
                ]
                gauges[0].set(Double(row["pending"]?.intValue ?? 0))
                gauges[1].set(Double(row["lag"]?.intValue ?? 0))
                gauges[2].set(Double(row["dead_letters"]?.intValue ?? 0))
                current[name] = gauges
            }
            for (name, gauges) in registered where current[name] == nil {
                for gauge in gauges { registry.unregisterGauge(gauge) }
            }
            registered = current
        }
    }

    /// The cluster's gauges (only on a cluster node: registered on first use).
    private func collectCluster() {
        let cluster = daemon.clusterStatus
        guard !cluster.isNull else { return }
        let node = cluster["node_id"]?.stringValue
        gauge(MetricName.clusterLag).set(Double(cluster["lag_events"]?.intValue ?? 0))
        let leads = node != nil && cluster["leader"]?.stringValue == node
        gauge(MetricName.clusterLeader).set(leads ? 1.0 : 0.0)
        gauge(MetricName.clusterEpoch).set(Double(cluster["epoch"]?.intValue ?? 0))
        gauge(MetricName.clusterConnected).set(cluster["state"]?.stringValue == "connected" ? 1.0 : 0.0)
        gauge(MetricName.clusterNodes).set(Double(cluster["nodes"]?.arrayValue?.count ?? 0))
    }

    /// The text exposition, every collected value read now.
    func scrape() async -> [UInt8] {
        let stats = daemon.bus.statistics()
        let dropped = daemon.connections.eventsDropped
        let connections = daemon.connections.count
        let iterations = daemon.pipeline.orchestrator.metrics.outcomes
        let equity = await daemon.pipeline.agents.broker.account().equity.dollars
        let state = tradingState()
        await collectConsumers()
        // One scrape at a time: each counter moves by what its source counted since the last.
        return seen.withLock { seen in
            func advance(_ name: String, _ labels: [(String, String)], to value: Int) {
                let key = labels.reduce(name) { $0 + "\u{0}" + $1.0 + "=" + $1.1 }
                let last = seen[key] ?? 0
                let counter = counter(name, labels)
                if value >= last {
                    if value > last { counter.increment(by: Int64(value - last)) }
                } else {
                    counter.reset()
                    counter.increment(by: Int64(value))
                }
                seen[key] = value
            }
            for (type, count) in stats.publishedByType {
                advance(MetricName.eventsPublished, [("type", type)], to: count)
            }
            advance(MetricName.eventsDelivered, [], to: stats.eventsDelivered)
            advance(MetricName.eventsDropped, [], to: dropped)
            for (outcome, count) in iterations { advance(MetricName.iterations, [("outcome", outcome)], to: count) }
            gauge(MetricName.connections).set(Double(connections))
            gauge(MetricName.equity).set(equity.isFinite ? equity : 0)
            gauge(MetricName.tradingState).set(Double(state))
            gauge(MetricName.eventStreams).set(Double(streams.count))
            collectCluster()
            return registry.emitToBuffer()
        }
    }
}
