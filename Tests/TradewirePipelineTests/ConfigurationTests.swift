import Foundation
import Testing
import TradewireTrading

@testable import TradewirePipeline

@Suite struct PositionLimitConfigurationTests {
    @Test func riskMaxPositionPctDefaultsAndLayers() throws {
        #expect(PipelineConfiguration().trading.riskMaxPositionPct == 0.20)
        #expect(
            PipelineConfiguration.environmentKeys.contains { $0 == ("RISK_MAX_POSITION_PCT", "risk_max_position_pct") })
        #expect(PipelineConfiguration.fileKeys.contains("risk_max_position_pct"))
        let path = NSTemporaryDirectory() + "tw-position-\(getpid()).json"
        try #"{"risk_max_position_pct": 0.1}"#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try PipelineConfiguration.load(configFile: path, environment: [:]).trading.riskMaxPositionPct == 0.1)
        let env = try PipelineConfiguration.load(configFile: path, environment: ["RISK_MAX_POSITION_PCT": "1"])
        #expect(env.trading.riskMaxPositionPct == 1)
    }

    @Test(arguments: ["0", "-0.1", "1.01", "lots"])
    func riskMaxPositionPctMustBeInZeroToOne(text: String) {
        do {
            _ = try PipelineConfiguration.load(configFile: nil, environment: ["RISK_MAX_POSITION_PCT": text])
            Issue.record("expected \(text) to be refused")
        } catch {
            #expect(error.source == "RISK_MAX_POSITION_PCT")
        }
    }
}
