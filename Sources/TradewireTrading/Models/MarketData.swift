import Foundation
import TradewireJSON

/// Bars (oldest first) and optional quote/trade snapshots for one symbol.
///
/// JSON: `{"symbol", "timeframe", "bars": [Bar], "quote": null | {...}, "latest_trade": null | {...}}`.
/// Decoding requires `symbol` and `bars` (each bar with all six fields); `timeframe` defaults
/// to `1Day`; `quote` and `latest_trade` are kept as raw JSON objects.
public struct MarketData: Sendable, JSONModel {
    public var symbol: String
    public var timeframe: String
    public var bars: [Bar]
    public var quote: JSONValue?
    public var latestTrade: JSONValue?

    public init(
        symbol: String, timeframe: String = "1Day", bars: [Bar], quote: JSONValue? = nil,
        latestTrade: JSONValue? = nil
    ) {
        self.symbol = symbol
        self.timeframe = timeframe
        self.bars = bars
        self.quote = quote
        self.latestTrade = latestTrade
    }

    /// The last bar's close, if any.
    public var lastClose: Double? { bars.last?.close }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("symbol", symbol)
        writer.field("timeframe", timeframe)
        writer.field("bars", bars)
        writer.field("quote", quote)
        writer.field("latest_trade", latestTrade)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        symbol = try r.string("symbol")
        timeframe = try r.optionalString("timeframe") ?? "1Day"
        bars = try r.decodeArray(Bar.self, "bars")
        quote = try Self.optionalObject(r, "quote")
        latestTrade = try Self.optionalObject(r, "latest_trade")
    }

    private static func optionalObject(_ r: JSONObjectReader, _ key: String) throws(JSONDecodingError) -> JSONValue? {
        guard let v = r.value(key) else { return nil }
        guard case .object = v else {
            throw JSONDecodingError(path: r.pointer(key), message: "expected an object or null, got \(v.typeName)")
        }
        return v
    }
}
