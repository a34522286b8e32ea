import Foundation
import Logging
import Testing
import TradewireTrading

@testable import TradewirePipeline

@Suite struct ConfigurationTests {
    @Test func defaultsMatchTheProtocol() {
        let c = PipelineConfiguration()
        #expect(c.symbols == ["AAPL", "MSFT", "GOOGL"])
        #expect(c.loopIntervalSeconds == 60)
        #expect(c.mode == .async)
        #expect(c.trading.quantMinSharpe == 0.8)
        #expect(c.trading.quantMaxDrawdown == 0.15)
        #expect(c.trading.riskMaxPerTrade == 0.02)
    }

    @Test func environmentOverridesTheFileWhichOverridesDefaults() throws {
        let path = NSTemporaryDirectory() + "tw-config-\(getpid()).json"
        try #"{"symbols": ["spy", "qqq"], "risk_max_qty": 50, "loop_interval_seconds": 5, "mode": "sync"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try PipelineConfiguration.load(
            configFile: path,
            environment: ["SYMBOLS": " iwm, dia ", "RISK_MAX_QTY": "75", "USE_ASYNC_ORCHESTRATOR": "TRUE"])
        #expect(c.symbols == ["IWM", "DIA"])
        #expect(c.trading.riskMaxQty == 75)
        #expect(c.loopIntervalSeconds == 5)
        #expect(c.mode == .async)
    }

    @Test func badValuesNameTheirSource() {
        #expect(throws: ConfigurationError.self) {
            try PipelineConfiguration.load(configFile: nil, environment: ["QUANT_MIN_SHARPE": "lots"])
        }
        do {
            _ = try PipelineConfiguration.load(configFile: nil, environment: ["SYMBOLS": "AAPL,bad sym!"])
            Issue.record("expected an error")
        } catch {
            #expect(error.source == "SYMBOLS")
        }
        #expect(throws: ConfigurationError.self) {
            try PipelineConfiguration.load(configFile: "/nonexistent/tw.json", environment: [:])
        }
    }
}

@Suite struct PipelineLoopTests {
    @Test func startRunsIterationsAndStopLetsTheCurrentOneFinish() async throws {
        let orchestrator = makeOrchestrator(.eventDriven)
        let loop = PipelineLoop(orchestrator: orchestrator, intervalSeconds: 0.05, logger: .init(label: "test"))
        let started = await loop.start()
        #expect(started.running)
        let deadline = ContinuousClock.now + .seconds(20)
        while await loop.status.iterations < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let stopped = await loop.stop()
        #expect(!stopped.running)
        #expect(stopped.iterations >= 2)
        #expect(stopped.lastIteration != nil)
        #expect(orchestrator.metrics.runs == stopped.iterations)
        let updated = await loop.start(intervalSeconds: 30)
        #expect(updated.intervalSeconds == 30)
        _ = await loop.stop()
    }
}
