import Foundation
import Testing
import TradewireJSON

@testable import TradewireTrading

@Suite struct ModelJSONTests {
    let when = utc("2024-03-01T14:30:00Z")

    var fullSignal: TradingSignal {
        TradingSignal(
            id: "sig-1", symbol: "AAPL", action: .buy, strategyName: "TrendFollowing", confidence: 0.75,
            timestamp: when,
            price: 187.5, stopLoss: 183.75, takeProfit: 191.25, reasoning: "because", qty: 12, riskAmount: 45.5,
            approved: true, rejectionReason: nil)
    }

    @Test func tradingSignalEncodesEveryKeyInOrder() throws {
        #expect(
            try encodedKeys(fullSignal) == [
                "id", "symbol", "action", "strategy_name", "confidence", "timestamp", "price", "stop_loss",
                "take_profit", "reasoning", "qty", "risk_amount", "approved", "rejection_reason",
            ])
        let text = JSONWriter.string(fullSignal)
        #expect(text.contains("\"action\":\"BUY\""))
        #expect(text.contains("\"timestamp\":\"2024-03-01T14:30:00.000000Z\""))
        #expect(text.contains("\"rejection_reason\":null"))
        #expect(text.contains("\"qty\":12"))
    }

    @Test func tradingSignalRoundTrips() throws {
        let decoded = try JSONParser.parse(JSONWriter.encode(fullSignal)).decode(TradingSignal.self)
        #expect(decoded == fullSignal)
        var rejected = fullSignal
        rejected.approved = false
        rejected.rejectionReason = "Confidence 0.20 below minimum 0.30"
        rejected.price = nil
        #expect(try JSONParser.parse(JSONWriter.encode(rejected)).decode(TradingSignal.self) == rejected)
    }

    @Test func codableBridgeUsesTheSameShape() throws {
        let data = try JSONEncoder().encode(fullSignal)
        let object = try JSONParser.parse(Array(data)).objectValue
        #expect(object?["strategy_name"] == "TrendFollowing")
        #expect(object?["stop_loss"] == 183.75)
        #expect(try JSONDecoder().decode(TradingSignal.self, from: data) == fullSignal)
        // Validation runs through Codable too.
        let bad = Data(#"{"symbol":"A","action":"BUY","strategy_name":"X","confidence":2}"#.utf8)
        #expect(throws: JSONDecodingError(path: "/confidence", message: "must be between 0 and 1")) {
            try JSONDecoder().decode(TradingSignal.self, from: bad)
        }
    }

    @Test func minimalTradingSignalGetsDefaults() throws {
        let before = Date()
        let json = try JSONParser.parse(
            #"{"symbol":"MSFT","action":"SELL","strategy_name":"Breakout","confidence":0.4}"#)
        let s = try json.decode(TradingSignal.self)
        #expect(s.symbol == "MSFT")
        #expect(s.action == .sell)
        #expect(s.strategyName == "Breakout")
        #expect(s.confidence == 0.4)
        #expect(UUID(uuidString: s.id) != nil)
        #expect(s.timestamp >= before.addingTimeInterval(-1) && s.timestamp <= Date().addingTimeInterval(1))
        #expect(s.approved == false)
        #expect(s.price == nil && s.stopLoss == nil && s.takeProfit == nil && s.reasoning == nil)
        #expect(s.qty == nil && s.riskAmount == nil && s.rejectionReason == nil)
    }

    @Test(arguments: [
        (#"{"action":"BUY","strategy_name":"X","confidence":0.5}"#, "/symbol", "required"),
        (#"{"symbol":"A","strategy_name":"X","confidence":0.5}"#, "/action", "required"),
        (
            #"{"symbol":"A","action":"buy","strategy_name":"X","confidence":0.5}"#, "/action",
            "expected one of BUY, SELL, HOLD"
        ),
        (#"{"symbol":"A","action":"BUY","confidence":0.5}"#, "/strategy_name", "required"),
        (#"{"symbol":"A","action":"BUY","strategy_name":"X"}"#, "/confidence", "required"),
        (
            #"{"symbol":"A","action":"BUY","strategy_name":"X","confidence":-0.1}"#, "/confidence",
            "must be between 0 and 1"
        ),
        (
            #"{"symbol":"A","action":"BUY","strategy_name":"X","confidence":"high"}"#, "/confidence",
            "expected a number, got string"
        ),
        (
            #"{"symbol":"A","action":"BUY","strategy_name":"X","confidence":0.5,"qty":1.5}"#, "/qty",
            "expected an integer"
        ),
    ])
    func tradingSignalDecodeErrors(text: String, path: String, message: String) throws {
        let json = try JSONParser.parse(text)
        #expect(throws: JSONDecodingError(path: path, message: message)) { try json.decode(TradingSignal.self) }
    }

    @Test func marketDataShapeAndDefaults() throws {
        let md = MarketData(symbol: "SPY", bars: makeBars([100, 101], spread: 0.5))
        #expect(try encodedKeys(md) == ["symbol", "timeframe", "bars", "quote", "latest_trade"])
        #expect(try encodedKeys(md.bars[0]) == ["timestamp", "open", "high", "low", "close", "volume"])
        let text = JSONWriter.string(md)
        #expect(text.contains("\"quote\":null,\"latest_trade\":null"))
        #expect(text.contains("\"volume\":1000000"))
        #expect(try JSONParser.parse(text).decode(MarketData.self) == md)

        let minimal = try JSONParser.parse(
            #"{"symbol":"QQQ","bars":[{"timestamp":"2024-01-02","open":1,"high":2,"low":0.5,"close":1.5,"volume":10}],"quote":{"bid":1.4,"ask":1.6}}"#
        ).decode(MarketData.self)
        #expect(minimal.timeframe == "1Day")
        #expect(minimal.bars == [Bar(timestamp: utc("2024-01-02"), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10)])
        #expect(minimal.quote == ["bid": 1.4, "ask": 1.6])
        #expect(minimal.latestTrade == nil)
    }

    @Test func marketDataErrorsPointAtTheBadValue() throws {
        let bar = #"{"timestamp":"2024-01-02","open":1,"high":2,"low":0.5,"close":1.5,"volume":10}"#
        let missingClose = #"{"timestamp":"2024-01-03","open":1,"high":2,"low":0.5,"volume":10}"#
        let cases: [(String, String, String)] = [
            (#"{"symbol":"A","bars":[\#(bar),\#(missingClose)]}"#, "/bars/1/close", "required"),
            (#"{"bars":[]}"#, "/symbol", "required"),
            (#"{"symbol":"A"}"#, "/bars", "required"),
            (
                #"{"symbol":"A","bars":[\#(bar),{"timestamp":"yesterday","open":1,"high":2,"low":0.5,"close":1,"volume":1}]}"#,
                "/bars/1/timestamp", "expected an RFC 3339 timestamp"
            ),
            (#"{"symbol":"A","bars":[\#(bar)],"quote":5}"#, "/quote", "expected an object or null, got number"),
            (#"{"symbol":"A","bars":{}}"#, "/bars", "expected an array, got object"),
        ]
        for (text, path, message) in cases {
            let json = try JSONParser.parse(text)
            #expect(throws: JSONDecodingError(path: path, message: message)) { try json.decode(MarketData.self) }
        }
    }

    @Test func executionResultShapeAndRoundTrip() throws {
        let result = ExecutionResult(
            signal: fullSignal, orderID: "paper-000001", executed: true, executionTime: when, error: nil,
            fillPrice: 187.5938, quantity: 12, side: .buy, commission: 0.06)
        #expect(
            try encodedKeys(result) == [
                "signal", "order_id", "executed", "execution_time", "error", "fill_price", "quantity", "side",
                "commission",
            ])
        #expect(JSONWriter.string(result).contains("\"side\":\"buy\""))
        #expect(try JSONParser.parse(JSONWriter.encode(result)).decode(ExecutionResult.self) == result)
        let failed = ExecutionResult(signal: fullSignal, error: "insufficient cash")
        let text = JSONWriter.string(failed)
        #expect(
            text.contains(
                "\"order_id\":null,\"executed\":false,\"execution_time\":null,\"error\":\"insufficient cash\""))
        #expect(try JSONParser.parse(text).decode(ExecutionResult.self) == failed)
        #expect(throws: JSONDecodingError(path: "/signal/symbol", message: "required")) {
            try JSONParser.parse(#"{"signal":{"action":"BUY"}}"#).decode(ExecutionResult.self)
        }
    }

    @Test func auditReportAndSummaryShapes() throws {
        var metrics = JSONObject()
        metrics.append("iteration_number", 3)
        metrics.append("approval_rate", 0.5)
        let report = AuditReport(
            reportType: .iteration, timestamp: when, summary: "ok", metrics: metrics, recommendations: nil)
        #expect(try encodedKeys(report) == ["report_type", "timestamp", "summary", "metrics", "recommendations"])
        #expect(
            JSONWriter.string(report).contains(
                "\"metrics\":{\"iteration_number\":3,\"approval_rate\":0.5},\"recommendations\":null"))
        #expect(try JSONParser.parse(JSONWriter.encode(report)).decode(AuditReport.self) == report)
        #expect(throws: JSONDecodingError(path: "/report_type", message: "expected one of iteration, daily, weekly")) {
            try JSONParser.parse(#"{"report_type":"monthly","summary":"x"}"#).decode(AuditReport.self)
        }

        let summary = IterationSummary(
            iterationNumber: 4, timestamp: when, symbolsProcessed: ["AAPL", "MSFT"], signalsGenerated: 2,
            signalsValidated: 2, signalsApproved: 1, signalsExecuted: 1,
            executionResults: [ExecutionResult(signal: fullSignal, executed: true)], errors: ["data: X failed"],
            durationSeconds: 1.25)
        #expect(
            try encodedKeys(summary) == [
                "iteration_number", "timestamp", "symbols_processed", "signals_generated", "signals_validated",
                "signals_approved", "signals_executed", "execution_results", "errors", "duration_seconds",
            ])
        #expect(try JSONParser.parse(JSONWriter.encode(summary)).decode(IterationSummary.self) == summary)
        let codable = try JSONDecoder().decode(IterationSummary.self, from: JSONEncoder().encode(summary))
        #expect(codable == summary)
    }
}
