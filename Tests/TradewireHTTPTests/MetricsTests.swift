import CoreMetrics
import Logging
import Prometheus
import Testing
import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireServer
import TradewireTrading

@testable import TradewireHTTP

/// An in-process daemon on an ephemeral bus (no socket: the collector reads it directly).
func makeDaemon() -> Daemon {
    let logger = Logger(label: "tradewire.http.tests", factory: { _ in SwiftLogNoOpLogHandler() })
    let bus = EventBus(logger: logger)
    let agents = TradingAgents(config: TradingConfig(), provider: SimulatedMarketDataProvider(seed: 42), logger: logger)
    let stages = StageRegistry(logger: logger)
    let orchestrator = SequentialOrchestrator(
        bus: bus, agents: agents, stageHandlers: stages, defaultSymbols: ["AAPL"], iterationIDPrefix: "t",
        logger: logger)
    let loop = PipelineLoop(orchestrator: orchestrator, intervalSeconds: 60, logger: logger)
    return Daemon(
        pipeline: PipelineHost(bus: bus, orchestrator: orchestrator, loop: loop, agents: agents), stages: stages,
        configuration: ServerConfiguration(socketPath: "/tmp/unused.sock"), logger: logger)
}

/// `name{labels} value` lines of an exposition, by their series.
func samples(_ bytes: [UInt8]) -> [String: String] {
    var result: [String: String] = [:]
    for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " ") else { continue }
        result[String(line[..<space])] = String(line[line.index(after: space)...])
    }
    return result
}

@Suite struct MetricsTests {
    @Test func aScrapeBringsTheDaemonsOwnCountersUpToDate() async throws {
        let daemon = makeDaemon()
        let registry = PrometheusCollectorRegistry()
        let collector = MetricsCollector(
            registry: registry, daemon: daemon, tradingState: { 2 }, streams: EventStreams(maximum: 1))
        for _ in 0..<3 { await daemon.bus.publish("metrics.a") }
        await daemon.bus.publish("metrics.b")
        var scraped = samples(await collector.scrape())
        #expect(scraped[#"tradewire_events_published_total{type="metrics.a"}"#] == "3")
        #expect(scraped[#"tradewire_events_published_total{type="metrics.b"}"#] == "1")
        #expect(scraped["tradewire_events_delivered_total"] == "0")
        #expect(scraped["tradewire_events_dropped_total"] == "0")
        #expect(scraped["tradewire_connections"] == "0.0")
        #expect(scraped["tradewire_trading_state"] == "2.0")
        #expect(scraped["tradewire_equity"] == "100000.0")
        #expect(scraped["tradewire_http_event_streams"] == "0.0")
        #expect(scraped[#"tradewire_iterations_total{outcome="completed"}"#] == "0")
        #expect(scraped["tradewire_publish_seconds_count"] == "0", "histograms exist from the start")
        #expect(scraped[#"tradewire_stage_seconds_count{stage="audit"}"#] == "0")

        _ = try await daemon.pipeline.orchestrator.run(IterationRequest(symbols: ["AAPL"]))
        for _ in 0..<2 { await daemon.bus.publish("metrics.a") }
        scraped = samples(await collector.scrape())
        #expect(
            scraped[#"tradewire_events_published_total{type="metrics.a"}"#] == "5", "moves by what was counted since")
        #expect(scraped[#"tradewire_iterations_total{outcome="completed"}"#] == "1")
        #expect(scraped[#"tradewire_events_published_total{type="audit_ready"}"#] == "1")
        let text = String(decoding: await collector.scrape(), as: UTF8.self)
        for name in [MetricName.eventsPublished, MetricName.connections, MetricName.publishSeconds] {
            #expect(text.contains("# HELP \(name) \(TradewireMetricsFactory.help[name]!)\n"))
        }
        #expect(text.contains("# TYPE tradewire_events_published_total counter\n"))
        #expect(text.contains("# TYPE tradewire_equity gauge\n"))
        #expect(text.contains("# TYPE tradewire_stage_seconds histogram\n"))
    }

    @Test func timersRecordedThroughSwiftMetricsLandInTheirBuckets() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = TradewireMetricsFactory(registry: registry)
        // The collector registers the families first; the factory must find the same ones.
        _ = MetricsCollector(
            registry: registry, daemon: makeDaemon(), tradingState: { 0 }, streams: EventStreams(maximum: 1))
        let publish = CoreMetrics.Timer(label: MetricName.publishSeconds, dimensions: [], factory: factory)
        publish.recordNanoseconds(30_000)
        publish.recordNanoseconds(2_000_000)
        let stage = CoreMetrics.Timer(label: MetricName.stageSeconds, dimensions: [("stage", "risk")], factory: factory)
        stage.recordNanoseconds(3_000_000)
        CoreMetrics.Counter(
            label: MetricName.stageCalls, dimensions: [("stage", "risk"), ("name", "veto"), ("outcome", "timeout")],
            factory: factory
        ).increment()
        let scraped = samples(registry.emitToBuffer())
        #expect(scraped[#"tradewire_publish_seconds_bucket{le="0.000025"}"#] == "0")
        #expect(scraped[#"tradewire_publish_seconds_bucket{le="0.00005"}"#] == "1")
        #expect(scraped[#"tradewire_publish_seconds_bucket{le="0.0025"}"#] == "2")
        #expect(scraped[#"tradewire_publish_seconds_bucket{le="+Inf"}"#] == "2")
        #expect(scraped["tradewire_publish_seconds_count"] == "2")
        #expect(scraped["tradewire_publish_seconds_sum"] == "0.00203")
        #expect(scraped[#"tradewire_stage_seconds_count{stage="risk"}"#] == "1")
        #expect(scraped[#"tradewire_stage_calls_total{stage="risk",name="veto",outcome="timeout"}"#] == "1")
    }
}
