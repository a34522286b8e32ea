import CoreMetrics

/// The names of the daemon's metrics (PROTOCOL §12), in the Prometheus style: base units
/// (seconds), `_total` for counters.
///
/// Histograms are recorded through swift-metrics where the time is spent: a no-op until the
/// executable bootstraps a metrics system (`tradewired --http`). Counters the bus and the
/// daemon already keep are read at scrape time instead, so they cost the hot path nothing.
public enum MetricName {
    public static let eventsPublished = "tradewire_events_published_total"
    public static let eventsDelivered = "tradewire_events_delivered_total"
    public static let eventsDropped = "tradewire_events_dropped_total"
    public static let publishSeconds = "tradewire_publish_seconds"
    public static let stageSeconds = "tradewire_stage_seconds"
    public static let stageCalls = "tradewire_stage_calls_total"
    public static let connections = "tradewire_connections"
    public static let journalCommitSeconds = "tradewire_journal_commit_seconds"
    public static let iterations = "tradewire_iterations_total"
    public static let equity = "tradewire_equity"
    public static let tradingState = "tradewire_trading_state"
    public static let eventStreams = "tradewire_http_event_streams"
    public static let consumerPending = "tradewire_consumer_pending"
    public static let consumerLag = "tradewire_consumer_lag"
    public static let consumerDeadLetters = "tradewire_consumer_dead_letters"
    public static let clusterLag = "tradewire_cluster_lag_events"
    public static let clusterLeader = "tradewire_cluster_leader"
    public static let clusterEpoch = "tradewire_cluster_epoch"
    public static let clusterConnected = "tradewire_cluster_connected"
    public static let clusterNodes = "tradewire_cluster_nodes"
}

/// The metrics the bus records itself.
enum BusMetrics {
    /// One journal append (a batch's transaction). Created on first use, after the
    /// executable bootstrapped its metrics system.
    static let journalCommit = CoreMetrics.Timer(label: MetricName.journalCommitSeconds)
}
