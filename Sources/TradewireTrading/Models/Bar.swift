import Foundation
import TradewireJSON

/// One OHLCV bar.
///
/// JSON: `{"timestamp", "open", "high", "low", "close", "volume"}`; all six are required when
/// decoding. Volume is a `Double` so fractional-share feeds fit; it is written as an integer
/// when integral. Decoding refuses, with the member's path, prices that are not positive
/// finite numbers at most ``TradingSignal/maxPrice`` and a negative or non-finite volume.
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
        open = try r.price("open")
        high = try r.price("high")
        low = try r.price("low")
        close = try r.price("close")
        volume = try r.nonNegative("volume")
    }
}
