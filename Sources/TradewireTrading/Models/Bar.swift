import Foundation
import TradewireJSON

/// One OHLCV bar.
///
/// JSON: `{"timestamp", "open", "high", "low", "close", "volume"}`; all six are required when
/// decoding. Volume is a `Double` so fractional-share feeds fit; it is written as an integer
/// when integral.
public struct Bar: Sendable, Hashable, JSONModel {
    public var timestamp: Date
    public var open: Double
    public var high: Double
    public var low: Double
    public var close: Double
    public var volume: Double

    public init(timestamp: Date, open: Double, high: Double, low: Double, close: Double, volume: Double) {
        self.timestamp = timestamp
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("timestamp", timestamp)
        writer.field("open", open)
        writer.field("high", high)
        writer.field("low", low)
        writer.field("close", close)
        writer.field("volume", volume)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        timestamp = try r.date("timestamp")
        open = try r.double("open")
        high = try r.double("high")
        low = try r.double("low")
        close = try r.double("close")
        volume = try r.double("volume")
    }
}
