import Foundation
import Testing
import TradewireJSON

@testable import TradewireTrading

/// Absurd client values are refused at decode time with the member's JSON Pointer.
@Suite struct DecodeBoundsTests {
    let head = #""symbol":"A","action":"BUY","strategy_name":"X","confidence":0.5"#

    /// Decodes `[{head, extra}]` as `params.data` would be, under `/data`.
    func decodeSignals(_ extra: String) throws -> [TradingSignal] {
        let json = try JSONParser.parse("[{\(head)\(extra.isEmpty ? "" : ",")\(extra)}]")
        return try decodeJSONArray(json, path: "/data")
    }

    @Test(arguments: [
        (#""price":0"#, "/data/0/price", "must be a positive finite number"),
        (#""price":-5"#, "/data/0/price", "must be a positive finite number"),
        (#""price":1e10"#, "/data/0/price", "must not exceed 1000000000"),
        (#""stop_loss":-1"#, "/data/0/stop_loss", "must be a positive finite number"),
        (#""take_profit":0"#, "/data/0/take_profit", "must be a positive finite number"),
        (#""take_profit":2e9"#, "/data/0/take_profit", "must not exceed 1000000000"),
        (#""qty":-1"#, "/data/0/qty", "must be between 0 and 1000000000, got -1"),
        (#""qty":1000000001"#, "/data/0/qty", "must be between 0 and 1000000000, got 1000000001"),
        (#""risk_amount":-0.5"#, "/data/0/risk_amount", "must be a non-negative finite number"),
        (
            #""price":1000000,"qty":1000000000"#, "/data/0/qty",
            "quantity × price must not exceed 922337203685477 dollars (the ledger's limit)"
        ),
    ])
    func signalBounds(extra: String, path: String, message: String) throws {
        #expect(throws: JSONDecodingError(path: path, message: message)) { try decodeSignals(extra) }
    }

    @Test func inRangeAndNullValuesAreKept() throws {
        let s = try #require(
            try decodeSignals(
                #""price":1e9,"stop_loss":null,"take_profit":0.0001,"qty":900000,"risk_amount":0"#
            )
            .first)
        #expect(s.price == 1e9 && s.stopLoss == nil && s.takeProfit == 0.0001)
        #expect(s.qty == 900_000 && s.riskAmount == 0)  // 9e14 dollars: just within the ledger
        #expect(try decodeSignals(#""qty":1000000000,"price":1"#).first?.qty == TradingSignal.maxQuantity)
        let bare = try #require(try decodeSignals(#""price":null,"qty":null,"risk_amount":null"#).first)
        #expect(bare.price == nil && bare.qty == nil && bare.riskAmount == nil)
        #expect(try decodeSignals(#""qty":0"#).first?.qty == 0)
        #expect(TradingSignal.maxPrice == 1e9 && TradingSignal.maxQuantity == 1_000_000_000)
    }

    @Test(arguments: [
        ("open", "0", "must be a positive finite number"),
        ("high", "-1", "must be a positive finite number"),
        ("low", "1e12", "must not exceed 1000000000"),
        ("close", "0", "must be a positive finite number"),
        ("volume", "-1", "must be a non-negative finite number"),
    ])
    func barBounds(field: String, value: String, message: String) throws {
        var fields = ["open": "1", "high": "2", "low": "0.5", "close": "1.5", "volume": "10"]
        fields[field] = value
        let members = ["open", "high", "low", "close", "volume"].map { "\"\($0)\":\(fields[$0]!)" }
        let bar = #"{"timestamp":"2024-01-02","# + members.joined(separator: ",") + "}"
        let good = #"{"timestamp":"2024-01-01","open":1,"high":2,"low":0.5,"close":1.5,"volume":0}"#
        let json = try JSONParser.parse(#"{"symbol":"A","bars":[\#(good),\#(bar)]}"#)
        #expect(throws: JSONDecodingError(path: "/bars/1/\(field)", message: message)) {
            try json.decode(MarketData.self)
        }
    }

    @Test func executionResultBounds() throws {
        let signal = "{\(head)}"
        let cases: [(String, String, String)] = [
            (#""fill_price":0"#, "/fill_price", "must be a positive finite number"),
            (#""fill_price":1e10"#, "/fill_price", "must not exceed 1000000000"),
            (#""quantity":-3"#, "/quantity", "must be between 0 and 1000000000, got -3"),
            (#""commission":-0.01"#, "/commission", "must be a non-negative finite number"),
            (
                #""fill_price":1e8,"quantity":100000000"#, "/quantity",
                "quantity × price must not exceed 922337203685477 dollars (the ledger's limit)"
            ),
            (
                #""signal":{"symbol":"A","action":"BUY","strategy_name":"X","confidence":0.5,"price":-1}"#,
                "/signal/price",
                "must be a positive finite number"
            ),
        ]
        for (extra, path, message) in cases {
            let text = extra.hasPrefix(#""signal""#) ? "{\(extra)}" : #"{"signal":\#(signal),\#(extra)}"#
            let json = try JSONParser.parse(text)
            #expect(throws: JSONDecodingError(path: path, message: message)) { try json.decode(ExecutionResult.self) }
        }
        let ok = try JSONParser.parse(#"{"signal":\#(signal),"fill_price":null,"quantity":5,"commission":0}"#)
        let result = try ok.decode(ExecutionResult.self)
        #expect(result.fillPrice == nil && result.quantity == 5 && result.commission == 0)
    }

    @Test func theCodableBridgeValidatesToo() throws {
        let data = Data("{\(head),\"price\":-1}".utf8)
        #expect(throws: JSONDecodingError(path: "/price", message: "must be a positive finite number")) {
            try JSONDecoder().decode(TradingSignal.self, from: data)
        }
    }
}
